def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def sign(x):
    if x > 0:
        return 1
    elif x < 0:
        return -1
    return 0


def total(values, skip_negative=False):
    acc = 0
    for v in values:
        if skip_negative and v < 0:
            continue
        acc += v
    return acc


def safe_div(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        return None
