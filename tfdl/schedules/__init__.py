"""tfdl.schedules: learning-rate schedules, each a registered `keras.optimizers.schedules.LearningRateSchedule`."""
