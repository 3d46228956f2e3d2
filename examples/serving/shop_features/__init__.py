"""The features of the serving example: shared by the training job and the online service."""
