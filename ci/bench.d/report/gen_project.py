"""Generate a Python project of N modules (each with branches, loops and an unused
function) and a runner that exercises a different subset of it per group, so coverage.py
can record real per-group data for the benchmark."""
import os
import sys

MODULE = '''
def f{n}(x):
    if x > {n} % 7:
        y = x * 2
    else:
        y = -x
    for i in range(x % 3):
        if i == 1:
            y += i
    return y


def g{n}(values):
    total = 0
    for v in values:
        if v < 0:
            continue
        total += v
    return total if total else None


def unused{n}(s):
    while s:
        s = s[1:]
    return s
'''

RUNNER = '''
import importlib
import sys

group, groups, modules = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for n in range(modules):
    mod = importlib.import_module(f"bigproj.sub{{n % 20}}.mod{{n}}")
    if n % groups == group - 1:
        getattr(mod, f"f{{n}}")(n % 11)
        getattr(mod, f"g{{n}}")([n, -1])
    elif n % 5 == group:
        getattr(mod, f"f{{n}}")(0)
'''


def main(root, modules):
    pkg = os.path.join(root, "bigproj")
    os.makedirs(pkg, exist_ok=True)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for s in range(20):
        os.makedirs(os.path.join(pkg, f"sub{s}"), exist_ok=True)
        open(os.path.join(pkg, f"sub{s}", "__init__.py"), "w").close()
    for n in range(modules):
        with open(os.path.join(pkg, f"sub{n % 20}", f"mod{n}.py"), "w") as f:
            f.write(MODULE.format(n=n))
    with open(os.path.join(root, "run_group.py"), "w") as f:
        f.write(RUNNER.format())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
