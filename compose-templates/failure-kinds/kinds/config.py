"""Module-level settings: what a test that changes them leaves behind for the next one."""

MODE = "modern"


def switch(mode):
    global MODE
    MODE = mode
    return MODE
