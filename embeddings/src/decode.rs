//! Streaming decoding of any supported audio file into interleaved `f32` blocks.
//!
//! symphonia demuxes every container (WAV, FLAC, MP3, Ogg, MP4/M4A) and decodes every codec
//! it has; Opus, which symphonia demuxes but cannot decode, goes through the pure-Rust
//! `opus-pure` crate (a port of libopus), so a fresh machine needs no C library. Decoding is a pull loop
//! ([`AudioStream::next_block`]): the caller sees one packet's worth of samples at a time,
//! so memory does not grow with the length of the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::error::{AnalysisError, ErrorKind};

/// How many undecodable packets in a row make a stream `corrupt` rather than merely damaged.
const MAX_CONSECUTIVE_BAD_PACKETS: usize = 64;

/// What the container says about the audio track, confirmed by the first decoded packet.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamInfo {
    /// Container short name (`wav`, `flac`, `mp3`, `ogg`, `isomp4`, ...).
    pub container: String,
    /// Codec short name (`pcm_s16le`, `flac`, `mp3`, `vorbis`, `opus`, `aac`, `alac`, ...).
    pub codec: String,
    /// Native sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels in the file (before Motif downmixes to mono).
    pub channels: usize,
    /// Bits per sample for PCM-like codecs, when the container says.
    pub bits_per_sample: Option<u32>,
}

enum TrackDecoder {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(OpusTrack),
}

/// An Opus track: symphonia's Ogg demuxer hands us packets, `opus-pure` decodes them.
struct OpusTrack {
    decoder: opus_pure::OpusMSDecoder,
    channels: usize,
    /// Samples per channel still to drop from the start (the encoder's pre-skip).
    pre_skip: usize,
}

/// One decoded packet: interleaved samples and the format they are in.
pub struct Block<'a> {
    pub samples: &'a [f32],
    pub sample_rate: u32,
    pub channels: usize,
}

/// An open audio file being decoded block by block.
pub struct AudioStream {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: TrackDecoder,
    track_id: u32,
    info: StreamInfo,
    block: Vec<f32>,
    bad_packets: usize,
    consecutive_bad: usize,
    good_packets: usize,
    ended_early: Option<String>,
    done: bool,
}

fn err(kind: ErrorKind, path: &Path, message: impl Into<String>) -> AnalysisError {
    AnalysisError::new(kind, path, message)
}

impl AudioStream {
    /// Opens `path`, probes its container and prepares a decoder for its default audio track.
    ///
    /// Fails with `empty`, `io`, `unsupported_format` or `unsupported_codec`; damage further
    /// into the file shows up later, from [`AudioStream::next_block`].
    pub fn open(path: &Path) -> Result<Self, AnalysisError> {
        let file =
            File::open(path).map_err(|e| err(ErrorKind::Io, path, format!("cannot open: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| err(ErrorKind::Io, path, format!("cannot stat: {e}")))?
            .len();
        if len == 0 {
            return Err(err(ErrorKind::Empty, path, "the file has 0 bytes"));
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymError::IoError(ref io) if io.kind() != std::io::ErrorKind::UnexpectedEof => err(
                    ErrorKind::Io,
                    path,
                    format!("read failed while probing: {e}"),
                ),
                _ => err(
                    ErrorKind::UnsupportedFormat,
                    path,
                    format!("not a recognised audio container ({e})"),
                ),
            })?;
        let container = format.format_info().short_name.to_string();
        let track = format.default_track(TrackType::Audio).ok_or_else(|| {
            err(
                ErrorKind::UnsupportedFormat,
                path,
                "the container has no audio track",
            )
        })?;
        let track_id = track.id;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| {
                err(
                    ErrorKind::UnsupportedCodec,
                    path,
                    "the audio track has no codec parameters",
                )
            })?
            .clone();

        let (decoder, codec, sample_rate, channels) = if params.codec == CODEC_ID_OPUS {
            let opus = OpusTrack::new(params.extra_data.as_deref())
                .map_err(|m| err(ErrorKind::Corrupt, path, m))?;
            let ch = opus.channels;
            (TrackDecoder::Opus(opus), "opus".to_string(), 48_000, ch)
        } else {
            let dec = symphonia::default::get_codecs()
                .make_audio_decoder(&params, &AudioDecoderOptions::default())
                .map_err(|e| {
                    err(
                        ErrorKind::UnsupportedCodec,
                        path,
                        format!("no decoder for codec {} ({e})", params.codec),
                    )
                })?;
            let codec = dec.codec_info().short_name.to_string();
            let rate = params.sample_rate.unwrap_or(0);
            let ch = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
            (TrackDecoder::Symphonia(dec), codec, rate, ch)
        };

        Ok(AudioStream {
            path: path.to_path_buf(),
            format,
            decoder,
            track_id,
            info: StreamInfo {
                container,
                codec,
                sample_rate,
                channels,
                bits_per_sample: params.bits_per_sample,
            },
            block: Vec::new(),
            bad_packets: 0,
            consecutive_bad: 0,
            good_packets: 0,
            ended_early: None,
            done: false,
        })
    }

    /// What the stream holds. Sample rate and channel count are corrected from the first
    /// decoded block when the container did not state them, so read this after the first
    /// [`AudioStream::next_block`].
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Packets that could not be decoded and were skipped.
    pub fn bad_packets(&self) -> usize {
        self.bad_packets
    }

    /// Set when the stream stopped before its end (a truncated file): the reason.
    pub fn ended_early(&self) -> Option<&str> {
        self.ended_early.as_deref()
    }

    /// The next block of interleaved samples (`info().channels` per frame), or `None` at
    /// the end of the stream. Skips damaged packets; a run of them is a `corrupt` error.
    pub fn next_block(&mut self) -> Result<Option<Block<'_>>, AnalysisError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.done = true;
                    continue;
                }
                Err(SymError::ResetRequired) => {
                    self.done = true;
                    self.ended_early = Some("the stream changed its parameters mid-way".into());
                    continue;
                }
                Err(e) => {
                    // A demuxer error after good audio means a truncated or damaged tail: keep
                    // what was decoded. Before any audio it means the file is unusable.
                    self.done = true;
                    if self.good_packets == 0 {
                        return Err(self.stream_error(e));
                    }
                    self.ended_early = Some(format!("stream ended early: {e}"));
                    continue;
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = match &mut self.decoder {
                TrackDecoder::Symphonia(dec) => match dec.decode(&packet) {
                    Ok(buf) => {
                        let spec = buf.spec();
                        self.info.sample_rate = spec.rate();
                        self.info.channels = spec.channels().count();
                        self.block.resize(buf.samples_interleaved(), 0.0);
                        buf.copy_to_slice_interleaved(&mut self.block);
                        Ok(())
                    }
                    Err(SymError::DecodeError(m)) => Err(m.to_string()),
                    Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        Err(format!("unexpected end of packet: {e}"))
                    }
                    Err(e) => return Err(self.stream_error(e)),
                },
                TrackDecoder::Opus(op) => op.decode(&packet.data, &mut self.block),
            };
            match decoded {
                Ok(()) => {
                    self.good_packets += 1;
                    self.consecutive_bad = 0;
                    if self.block.is_empty() {
                        continue;
                    }
                    if self.info.channels == 0 || self.info.sample_rate == 0 {
                        return Err(err(
                            ErrorKind::Corrupt,
                            &self.path,
                            "decoded audio has no sample rate or no channels",
                        ));
                    }
                    return Ok(Some(Block {
                        samples: &self.block,
                        sample_rate: self.info.sample_rate,
                        channels: self.info.channels,
                    }));
                }
                Err(message) => {
                    self.bad_packets += 1;
                    self.consecutive_bad += 1;
                    if self.consecutive_bad >= MAX_CONSECUTIVE_BAD_PACKETS {
                        return Err(err(
                            ErrorKind::Corrupt,
                            &self.path,
                            format!(
                                "{} undecodable packets in a row (last: {message})",
                                self.consecutive_bad
                            ),
                        ));
                    }
                }
            }
        }
    }

    fn stream_error(&self, e: SymError) -> AnalysisError {
        let kind = match &e {
            SymError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                ErrorKind::Io
            }
            SymError::Unsupported(_) => ErrorKind::UnsupportedCodec,
            _ => ErrorKind::Corrupt,
        };
        err(kind, &self.path, format!("decoding failed: {e}"))
    }
}

impl OpusTrack {
    /// Builds the decoder from the `OpusHead` identification header (RFC 7845 section 5.1).
    fn new(head: Option<&[u8]>) -> Result<Self, String> {
        let head = head.ok_or("Opus track without an OpusHead header")?;
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err("malformed OpusHead header".into());
        }
        let channels = head[9] as usize;
        let pre_skip = u16::from_le_bytes([head[10], head[11]]) as usize;
        let family = head[18];
        // The standard layouts: family 0 (mono/stereo) and 1 (Vorbis order, up to 8).
        let decoder = opus_pure::OpusMSDecoder::new(48_000, channels, family).map_err(|e| {
            format!("Opus with {channels} channels in mapping family {family}: {e}")
        })?;
        Ok(OpusTrack {
            decoder,
            channels,
            pre_skip,
        })
    }

    fn decode(&mut self, data: &[u8], out: &mut Vec<f32>) -> Result<(), String> {
        // 120 ms at 48 kHz is the longest Opus packet.
        out.resize(5760 * self.channels, 0.0);
        let frames = self
            .decoder
            .decode(data, 5760, out)
            .map_err(|e| format!("Opus packet: {e}"))?;
        out.truncate(frames * self.channels);
        let skip = self.pre_skip.min(frames);
        if skip > 0 {
            out.drain(..skip * self.channels);
            self.pre_skip -= skip;
        }
        Ok(())
    }
}
