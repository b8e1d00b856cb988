def describe(n):
    parts = []
    if n % 2 == 0:
        parts.append("even")
    else:
        parts.append("odd")
    if n > 100:
        parts.append("big")
    return " ".join(parts)


def first_word(s):
    for word in s.split():
        return word
    return None


def never_called(x):
    while x > 0:
        x -= 1
    return x
