"""Chaos suite (issue 16): SIGKILLed writers, GC under readers, every kind of artifact damage."""
