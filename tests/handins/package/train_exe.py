"""The hand-in's training script, run by the student from this folder: a check must never run it."""

from pathlib import Path

from model import Network

Path(__file__).with_name("train_exe.ran").write_text("train_exe.py was run\n")
network = Network()
