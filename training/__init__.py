"""The training core: the config, the trainer, one experiment and its folder, the result tables' schema.

Knows nothing of Ray or of reports; imports the network (model/) and the data layer (kinetics/).
"""
