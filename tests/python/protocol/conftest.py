"""Hooks of the plugin-contract suite: with PROTOCOL_NEXT_LOG set, every test's teardown
writes the test pytest says follows it, as a project's own hooks read it (`nextitem is None`
for the last one, else the next test's attributes)."""
import os


def pytest_runtest_teardown(item, nextitem):
    log = os.environ.get("PROTOCOL_NEXT_LOG")
    if log:
        after = "None" if nextitem is None else nextitem.nodeid
        with open(log, "a") as f:
            f.write("%s -> %s\n" % (item.nodeid, after))
