"""Helpers shared by the peft test modules (tests/test_peft_*.py): the classes and prompt template of their
synthetic task."""


CLASSES = ["cat", "dog", "car", "tree"]
TEMPLATE = "a photo of a {c}"
