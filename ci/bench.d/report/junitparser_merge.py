"""The baseline: merge JUnit files with junitparser the way its docs show (`xml1 + xml2`)."""
import sys

from junitparser import JUnitXml

out, inputs = sys.argv[1], sys.argv[2:]
merged = JUnitXml()
for path in inputs:
    merged += JUnitXml.fromfile(path)
merged.update_statistics()
merged.write(out)
