"""Scripts run by an external tool's own python ({wrappers} in methods/command.py), never imported here.

Each one runs the tool's own code with our paths where the tool has no usable command line, and
keeps its output lossless where the tool allows it. They use only the standard library, numpy and
Pillow, which every tool's environment has.
"""
