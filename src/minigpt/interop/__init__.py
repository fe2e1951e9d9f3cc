"""Models crossing minigpt's border: loading a run or a Hugging Face folder, and exporting."""
