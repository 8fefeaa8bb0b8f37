"""The networks F that the book's chapters explain, one module per experiment.

Each module builds the architecture of the paper's appendix for its experiment
and documents what, if anything, differs from the paper.
"""
