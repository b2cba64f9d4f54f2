"""Kinetics-skeleton data: the raw release, its conversion to memory-mappable arrays, subsets, augmentation."""
