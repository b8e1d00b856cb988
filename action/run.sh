#!/usr/bin/env bash
# The steps of the compose-shard GitHub Action (action.yml), as a script that also runs
# locally: every input arrives as an INPUT_* environment variable (see action.yml), outputs
# go to $GITHUB_OUTPUT and the install directory to $GITHUB_PATH when those are set.
#
#   INPUT_GROUPS=4 INPUT_COMMAND='pytest --cov' INPUT_WORKING_DIRECTORY=app action/run.sh
#
# 1. installs compose-shard (INPUT_WHEEL; else reuses the one on PATH, if it is INPUT_VERSION
#    when that is set; else INPUT_VERSION, by default the version of this checkout's
#    Cargo.toml, from the package index) into a virtual environment under $RUNNER_TEMP;
# 2. runs `compose-shard run` (or `merge`) in INPUT_WORKING_DIRECTORY, results in INPUT_RESULTS;
# 3. exits with compose-shard's exit code, also written as the `exit-code` output.
set -euo pipefail
action_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${INPUT_MODE:-run}"
results="${INPUT_RESULTS:-compose-shard-results}"
workdir="${INPUT_WORKING_DIRECTORY:-.}"

output() { if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "$1=$2" >>"$GITHUB_OUTPUT"; fi; }
# A usage or setup problem of the action itself: exit code 2, like compose-shard's usage errors.
fail() {
  echo "::error title=compose-shard action::$*" >&2
  output exit-code 2
  exit 2
}

# Split a string into words the way a shell would (quotes and backslashes group words), with
# no expansion at all: xargs does exactly that. The words go to the array named by $2.
split_words() {
  local text="$1" file
  file="$(mktemp)"
  if ! printf '%s' "$text" | xargs printf '%s\0' >"$file"; then
    rm -f "$file"
    fail "cannot split into words (unbalanced quotes?): $text"
  fi
  mapfile -d '' -t "$2" <"$file"
  rm -f "$file"
  # xargs runs printf once even for empty input, which prints one empty word.
  local -n words="$2"
  if [[ ${#words[@]} -eq 1 && -z "${words[0]}" ]]; then words=(); fi
}

# The version this action was released with: the one place it is written is Cargo.toml.
action_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' "$action_dir/Cargo.toml" | head -n1
}

install_compose_shard() {
  local spec
  if [[ -n "${INPUT_WHEEL:-}" ]]; then
    spec="$INPUT_WHEEL"
    # A relative wheel path is relative to where the step started, not to working-directory.
    if [[ "$spec" != *://* && "$spec" != /* ]]; then spec="$PWD/$spec"; fi
  elif command -v compose-shard >/dev/null &&
    [[ -z "${INPUT_VERSION:-}" || "$(compose-shard --version)" == "compose-shard $INPUT_VERSION "* ]]; then
    echo "using $(command -v compose-shard): $(compose-shard --version)"
    return
  else
    spec="compose-shard==${INPUT_VERSION:-$(action_version)}"
  fi
  local venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/compose-shard-action/venv"
  echo "installing $spec into $venv"
  rm -rf "$venv"
  "${INPUT_PYTHON:-python3}" -m venv "$venv" || fail "cannot create a virtual environment with ${INPUT_PYTHON:-python3} (set the python input)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" || fail "pip cannot install $spec"
  export PATH="$venv/bin:$PATH"
  if [[ -n "${GITHUB_PATH:-}" ]]; then echo "$venv/bin" >>"$GITHUB_PATH"; fi
  echo "installed: $(compose-shard --version)"
}

# The arguments of `compose-shard run` or `merge` built from the inputs, into the array `argv`.
build_argv() {
  local extra=() command=()
  split_words "${INPUT_ARGS:-}" extra
  case "$mode" in
    run)
      argv=(run --out "$results")
      if [[ -n "${INPUT_GROUPS:-}" ]]; then argv+=(--groups "$INPUT_GROUPS"); fi
      if [[ -n "${INPUT_ONLY:-}" ]]; then argv+=(--only "$INPUT_ONLY"); fi
      argv+=("${extra[@]}")
      split_words "${INPUT_COMMAND:-}" command
      if [[ ${#command[@]} -gt 0 ]]; then argv+=(-- "${command[@]}"); fi
      ;;
    merge)
      local patterns=() pattern inputs=()
      split_words "${INPUT_MERGE_INPUTS:-results-*/}" patterns
      shopt -s nullglob
      for pattern in "${patterns[@]}"; do
        # shellcheck disable=SC2206 # the glob is meant to expand here
        local matches=($pattern)
        inputs+=("${matches[@]}")
      done
      shopt -u nullglob
      [[ ${#inputs[@]} -gt 0 ]] || fail "merge-inputs matched nothing in $PWD: ${INPUT_MERGE_INPUTS:-results-*/}"
      mkdir -p "$results"
      argv=(merge --junit-xml "$results/junit.xml" --cov-xml "$results/coverage.xml"
        "${extra[@]}" "${inputs[@]}")
      ;;
    *) fail "mode must be run, merge or install (got $mode)" ;;
  esac
}

main() {
  case "$mode" in run | merge | install) ;; *) fail "mode must be run, merge or install (got $mode)" ;; esac
  [[ -d "$workdir" ]] || fail "working-directory $workdir does not exist (in $PWD)"
  # Written first, so the upload step finds the folder even if installing fails.
  if [[ "$mode" != install ]]; then
    if [[ "$results" == /* ]]; then
      output results-path "$results"
    else
      output results-path "$(cd "$workdir" && pwd)/$results"
    fi
  fi
  install_compose_shard
  if [[ "$mode" == install ]]; then output exit-code 0; return 0; fi
  cd "$workdir"
  local argv=()
  build_argv
  echo "+ compose-shard ${argv[*]}"
  local code=0
  compose-shard "${argv[@]}" || code=$?
  output exit-code "$code"
  echo "compose-shard exited with $code; results in $results (in $PWD)"
  return "$code"
}

main
