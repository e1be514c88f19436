"""Real HVU video files on disk: finding them (scan), checking them (probe), preparing them for training.

Where it sits: beside the store. ``scan`` matches the files of video folders to the store's clips and
records them (tables ``video_files`` and ``clip_videos``); ``probe`` opens them with PyAV; splits read
the result (``split --require-videos``, each clip's file in the split CSVs); ``prepare`` re-encodes a
split's clips for fast decoding. Never imports torch, textual or the trainer; PyAV is imported by
``probe`` and ``prepare`` only, when they run.
"""
