"""The book's chapters, one module each, named after its notebook (``01_method`` -> ``method``).

A chapter module holds that chapter's analysis, recipes, tables and figures. It may
import lanlib's method modules; nothing in lanlib imports it, and no chapter imports
another.
"""
