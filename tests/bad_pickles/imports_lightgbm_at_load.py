# What pickling a lightgbm.Booster by reference produces: a GLOBAL opcode naming the module,
# which the numpy/pandas-only runtime cannot import.
PICKLE_BYTES = b"\x80\x02clightgbm.basic\nBooster\nq\x00."
