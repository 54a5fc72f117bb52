# stand-in for configs/realbasicvsr_x4.py
