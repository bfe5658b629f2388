"""Instructor and TA tooling: lab sources, nbgrader release and grading, example submissions.

Students never need this subpackage; it imports nbgrader and nbformat, which Colab may lack.
"""
