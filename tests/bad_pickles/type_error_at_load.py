# REDUCE int(1, 2, 3): unpickling raises TypeError, which predict.py reports as a Python
# version incompatibility (the usual cause of a TypeError while loading)
PICKLE_BYTES = b"\x80\x02cbuiltins\nint\nK\x01K\x02K\x03\x87R."
