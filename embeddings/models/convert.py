#!/usr/bin/env python3
"""Convert the musicnn checkpoints to the files Motif loads, and compute reference outputs.

    python3 -m venv V && V/bin/pip install tensorflow-cpu==2.21.* "tf_keras==2.21.*" librosa soundfile safetensors
    V/bin/pip install --no-deps musicnn==0.1.0      # its pins (numpy < 1.17) do not install
    V/bin/python embeddings/models/convert.py weights            # -> embeddings/models/*.safetensors
    TF_USE_LEGACY_KERAS=1 V/bin/python embeddings/models/convert.py reference OUT.json WAV...
    # (16 kHz mono WAVs; musicnn builds its graph with tf.compat.v1.layers, which need tf_keras)

`weights` reads the TF1 checkpoints shipped in the `musicnn` 0.1.0 wheel (ISC licence,
LICENSE-musicnn.md) and writes every trained variable (no optimiser slots) as float32 under
its TensorFlow name, so `embeddings/src/learned/musicnn.rs` can name what it reads.

`reference` runs musicnn's code on each file: the log-mel of `musicnn.extractor.batch_data`
(librosa, 512-point FFT, hop 256, 96 mel bands, log10(10000 x + 1), non-overlapping 3 s
patches) and the TensorFlow graph of `musicnn.models` restored from the checkpoint. One
deliberate difference: `batch_data` casts the mel to float16 before `10000 * x`, which
overflows to inf wherever a band's power exceeds 6.55 (loud bass does), and then every
patch gets the same tags; the log is taken here in float32, as Essentia's
TensorflowInputMusiCNN does. It writes, per file and model, the sigmoid
tag scores and the 200-d penultimate layer of every patch. The Rust test
`embeddings/tests/model_reference.rs` compares Motif's outputs on the same files with these
(tolerance 1e-3). The files must already be 16 kHz, so no resampler is involved.
"""
import json
import os
import sys

import numpy as np

MODELS = ["MSD_musicnn", "MTT_musicnn"]
HERE = os.path.dirname(os.path.abspath(__file__))


def checkpoint_dir(model):
    import musicnn

    return os.path.join(os.path.dirname(musicnn.__file__), model) + "/"


def weights():
    import tensorflow as tf
    from safetensors.numpy import save_file
    from musicnn import configuration

    for model in MODELS:
        reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_dir(model))
        tensors = {}
        for name in sorted(reader.get_variable_to_shape_map()):
            if "Adam" in name or name.endswith("_power"):
                continue
            tensors[name] = np.ascontiguousarray(reader.get_tensor(name), dtype=np.float32)
        labels = configuration.MSD_LABELS if model.startswith("MSD") else configuration.MTT_LABELS
        out = os.path.join(HERE, model.lower() + ".safetensors")
        save_file(
            tensors,
            out,
            metadata={
                "source": f"musicnn 0.1.0 (PyPI wheel), checkpoint {model}",
                "licence": "ISC, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019",
                "labels": json.dumps(labels),
            },
        )
        count = sum(t.size for t in tensors.values())
        print(f"{out}: {len(tensors)} tensors, {count} parameters")


def log_mel_patches(wav, n_frames):
    """`musicnn.extractor.batch_data` with the log in float32 (see the module's doc)."""
    import librosa
    from musicnn import configuration as config

    audio, sr = librosa.load(wav, sr=config.SR)
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=config.FFT_HOP,
                                         n_fft=config.FFT_SIZE, n_mels=config.N_MELS).T
    rep = np.log10(10000 * mel.astype(np.float32) + 1)
    starts = range(0, rep.shape[0] - n_frames + 1, n_frames)
    return np.stack([rep[t:t + n_frames] for t in starts]), rep


def reference(out_path, wavs):
    import tensorflow as tf
    import soundfile as sf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    n_frames = 187
    files = []
    for wav in wavs:
        info = sf.info(wav)
        if info.samplerate != 16000 or info.channels != 1:
            sys.exit(f"{wav}: {info.samplerate} Hz x{info.channels}; the reference needs 16 kHz mono")
        batch, spectrogram = log_mel_patches(wav, n_frames)
        entry = {"file": os.path.relpath(wav, os.path.dirname(os.path.abspath(out_path))),
                 "mel_frames": int(spectrogram.shape[0]),
                 "mel_mean": float(np.mean(spectrogram.astype(np.float64))),
                 "models": {}}
        for model in MODELS:
            tf.compat.v1.reset_default_graph()
            x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, 96])
            is_training = tf.compat.v1.placeholder(tf.bool)
            y, *_, penultimate = models.define_model(x, is_training, model, 50)
            scores = tf.nn.sigmoid(y)
            with tf.compat.v1.Session() as sess:
                tf.compat.v1.train.Saver().restore(sess, checkpoint_dir(model))
                s, p = sess.run([scores, penultimate], feed_dict={x: batch, is_training: False})
            entry["models"][model] = {
                "scores": np.round(s.astype(np.float64), 6).tolist(),
                "penultimate": np.round(p.astype(np.float64), 6).tolist(),
            }
        files.append(entry)
        print(f"{wav}: {batch.shape[0]} patches")
    with open(out_path, "w") as f:
        json.dump({"generator": "embeddings/models/convert.py reference", "files": files}, f)
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["weights"]:
        weights()
    elif sys.argv[1:2] == ["reference"] and len(sys.argv) >= 4:
        reference(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
