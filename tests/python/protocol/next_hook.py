"""A project's hook that reads `nextitem` (plugin contract; loaded with `-p next_hook`): every
test's teardown writes the test pytest says follows it to PROTOCOL_NEXT_LOG, as hooks read it
(`nextitem is None` for the last one, else the next test's attributes)."""
import os


def pytest_runtest_teardown(item, nextitem):
    after = "None" if nextitem is None else nextitem.nodeid
    with open(os.environ["PROTOCOL_NEXT_LOG"], "a") as f:
        f.write("%s -> %s\n" % (item.nodeid, after))
