//! Synthetic test-pattern renderer for the `testsrc` source plugin.
//!
//! [`PatternRenderer`] plays the part of a demo camera: every call to
//! [`PatternRenderer::render`] draws one picture and returns it as a complete
//! baseline JPEG (SOI..EOI, exactly one image), ready to be sent as one part of an
//! MJPEG stream. The picture shows
//!
//! * SMPTE-style 75 % colour bars with a reverse "castellation" strip below them,
//! * a greyscale ramp along the bottom with a box sweeping back and forth across it
//!   (its position is derived from the frame number, so viewers see motion), and
//! * an overlay with the frame counter (`#000123`) and the UTC capture time
//!   (`HH:MM:SS.mmm`) in large bitmap text on a darkened box.
//!
//! Everything is pure Rust: glyphs come from the `font8x8` 8x8 bitmap font, scaled
//! up by an integer factor that follows the picture height, and the JPEG is produced
//! by `jpeg-encoder` (4:2:0 chroma subsampling). The static background is constant
//! along each row of a band, so it is kept as one template row per band and copied
//! into the reused RGB frame buffer with slice copies; per frame only the moving box
//! and the overlay are drawn on top, with run-based rectangle fills.

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use font8x8::legacy::{BASIC_LEGACY, NOTHING_TO_DISPLAY};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

/// One RGB pixel.
type Rgb = [u8; 3];

/// 75 % colour bars, left to right: grey, yellow, cyan, green, magenta, red, blue.
const BARS: [Rgb; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

/// Reverse-order strip under the main bars: blue, black, magenta, black, cyan,
/// black, grey (the "castellations" of the SMPTE pattern).
const CASTELLATIONS: [Rgb; 7] = [
    [0, 0, 191],
    [19, 19, 19],
    [191, 0, 191],
    [19, 19, 19],
    [0, 191, 191],
    [19, 19, 19],
    [191, 191, 191],
];

/// Darkest and brightest level of the greyscale ramp (studio black and white).
const RAMP_LO: u8 = 16;
const RAMP_HI: u8 = 235;

/// Colours of the moving box.
const BOX_FILL: Rgb = [255, 140, 0];
const BOX_BORDER: Rgb = [0, 0, 0];

/// Colour of the overlay text.
const TEXT_FG: Rgb = [255, 255, 255];

/// Pixels under the overlay box are divided by `2^OVERLAY_SHIFT` (a translucent dark box).
const OVERLAY_SHIFT: u32 = 2;

/// Picture lines per unit of text scale: at 720 lines the 8x8 glyphs are drawn 8x (64 px).
const TEXT_SCALE_DIVISOR: usize = 90;

/// The box moves `width / BOX_SPEED_DIVISOR` pixels per frame (at least one pixel).
const BOX_SPEED_DIVISOR: usize = 60;

/// Renders the synthetic test pattern and encodes it as JPEG.
///
/// The renderer owns an RGB frame buffer that is reused between frames, so a
/// long-lived renderer per stream avoids re-allocating it. Output is deterministic:
/// the same size, quality, frame number and capture time always give the same bytes.
pub struct PatternRenderer {
    width: usize,
    height: usize,
    /// `width`/`height` as the encoder wants them (checked to fit in `new`).
    jpeg_width: u16,
    jpeg_height: u16,
    quality: u8,
    /// RGB24 frame buffer, `width * height * 3` bytes, reused between frames.
    frame: Vec<u8>,
    /// Static background: colour bars, castellations, ramp (top to bottom).
    bands: [Band; 3],
    /// Size of the previous JPEG, used to pre-size the next output buffer.
    last_len: usize,
}

/// A horizontal band of the background whose rows are all identical.
struct Band {
    rows: Range<usize>,
    /// One row of `width * 3` RGB bytes, copied into every row of the band.
    template: Vec<u8>,
}

/// A rectangle in pixels that lies completely inside the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rect {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

impl Rect {
    /// Clips the half-open rectangle `[x0, x1) x [y0, y1)` to a `width` x `height`
    /// frame; `None` if nothing of it is visible.
    fn clipped(x0: i64, y0: i64, x1: i64, y1: i64, width: usize, height: usize) -> Option<Rect> {
        let x0 = x0.clamp(0, width as i64);
        let x1 = x1.clamp(0, width as i64);
        let y0 = y0.clamp(0, height as i64);
        let y1 = y1.clamp(0, height as i64);
        (x1 > x0 && y1 > y0).then(|| Rect {
            x: x0 as usize,
            y: y0 as usize,
            w: (x1 - x0) as usize,
            h: (y1 - y0) as usize,
        })
    }
}

impl PatternRenderer {
    /// Creates a renderer for `width` x `height` pictures at JPEG `quality`.
    ///
    /// Any size the JPEG format allows works (odd sizes included); the caller is
    /// expected to restrict it to sensible camera sizes (e.g. 16..=3840 x 16..=2160).
    /// `quality` is clamped to `1..=100`.
    ///
    /// # Panics
    ///
    /// If `width` or `height` is zero or larger than 65535 (the JPEG limit).
    #[must_use]
    pub fn new(width: u32, height: u32, quality: u8) -> Self {
        let (Ok(jpeg_width), Ok(jpeg_height)) = (u16::try_from(width), u16::try_from(height))
        else {
            panic!("test pattern size {width}x{height} exceeds the JPEG limit of 65535");
        };
        assert!(
            jpeg_width > 0 && jpeg_height > 0,
            "test pattern size {width}x{height} must not be zero"
        );
        let (width, height) = (usize::from(jpeg_width), usize::from(jpeg_height));

        let bars_end = height * 2 / 3;
        let castellations_end = height * 3 / 4;
        let bands = [
            Band {
                rows: 0..bars_end,
                template: bar_row(width, &BARS),
            },
            Band {
                rows: bars_end..castellations_end,
                template: bar_row(width, &CASTELLATIONS),
            },
            Band {
                rows: castellations_end..height,
                template: ramp_row(width),
            },
        ];

        PatternRenderer {
            width,
            height,
            jpeg_width,
            jpeg_height,
            quality: quality.clamp(1, 100),
            frame: vec![0; width * height * 3],
            bands,
            last_len: 0,
        }
    }

    /// Renders frame `frame_number` captured at `captured_at` and returns the JPEG
    /// bytes (SOI..EOI, exactly one baseline image of the configured size).
    #[must_use]
    pub fn render(&mut self, frame_number: u64, captured_at: SystemTime) -> Vec<u8> {
        self.draw_background();
        self.draw_moving_box(frame_number);
        self.draw_overlay(frame_number, captured_at);
        self.encode()
    }

    /// Copies the band templates into the frame buffer, overwriting the whole picture.
    fn draw_background(&mut self) {
        let stride = self.width * 3;
        for band in &self.bands {
            let rows = &mut self.frame[band.rows.start * stride..band.rows.end * stride];
            for row in rows.chunks_exact_mut(stride) {
                row.copy_from_slice(&band.template);
            }
        }
    }

    /// Where the moving box is in frame `frame_number`: a square in the ramp band
    /// that bounces between the left and right edge. `None` if the band is empty.
    fn box_rect(&self, frame_number: u64) -> Option<Rect> {
        let band = &self.bands[2].rows;
        let band_h = band.len();
        if band_h == 0 {
            return None;
        }
        let size = (band_h * 2 / 3).clamp(1, self.width);
        let y = band.start + (band_h - size) / 2;

        let travel = (self.width - size) as u64;
        let x = if travel == 0 {
            0
        } else {
            // Triangle wave in whole steps: out in `steps` frames, back in `steps`
            // frames; the last step towards the right edge is clamped to `travel`.
            let step = (self.width / BOX_SPEED_DIVISOR).max(1) as u64;
            let steps = travel.div_ceil(step);
            let k = frame_number % (2 * steps);
            let k = if k <= steps { k } else { 2 * steps - k };
            (k * step).min(travel)
        };
        Some(Rect {
            x: x as usize,
            y,
            w: size,
            h: size,
        })
    }

    /// Draws the moving box (black border, orange fill) for `frame_number`.
    fn draw_moving_box(&mut self, frame_number: u64) {
        let Some(r) = self.box_rect(frame_number) else {
            return;
        };
        fill_rect(&mut self.frame, self.width, r, BOX_BORDER);
        let border = (r.w / 12).max(1);
        if r.w > 2 * border && r.h > 2 * border {
            let inner = Rect {
                x: r.x + border,
                y: r.y + border,
                w: r.w - 2 * border,
                h: r.h - 2 * border,
            };
            fill_rect(&mut self.frame, self.width, inner, BOX_FILL);
        }
    }

    /// Draws the frame counter and the UTC capture time, two centred lines of
    /// scaled bitmap text on a darkened box in the middle of the colour bars.
    fn draw_overlay(&mut self, frame_number: u64, captured_at: SystemTime) {
        let counter = format!("#{frame_number:06}");
        let clock = format_utc_clock(captured_at);
        let lines = [counter.as_str(), clock.as_str()];
        // Both lines are ASCII, so their byte length is their glyph count.
        let max_chars = lines.iter().map(|line| line.len()).max().unwrap_or(0);

        // In glyph pixels the block is 3 units of padding on every side and 2 units
        // between the lines; the scale follows the height but must fit the width.
        let scale_by_height = self.height / TEXT_SCALE_DIVISOR;
        let scale_by_width = (self.width * 9 / 10) / (max_chars * 8 + 6);
        let scale = scale_by_height.min(scale_by_width).max(1);
        let pad = 3 * scale;
        let line_h = 8 * scale;
        let gap = 2 * scale;
        let block_w = (max_chars * 8 * scale + 2 * pad) as i64;
        let block_h = (2 * line_h + gap + 2 * pad) as i64;

        let bars_end = self.bands[0].rows.end as i64;
        let bx = (self.width as i64 - block_w) / 2;
        let by = ((bars_end - block_h) / 2).max(0);
        if let Some(r) = Rect::clipped(bx, by, bx + block_w, by + block_h, self.width, self.height)
        {
            darken_rect(&mut self.frame, self.width, r);
        }

        for (i, line) in lines.iter().enumerate() {
            let indent = (max_chars - line.len()) * 8 * scale / 2;
            let x = bx + (pad + indent) as i64;
            let y = by + (pad + i * (line_h + gap)) as i64;
            self.draw_text(x, y, scale, line, TEXT_FG);
        }
    }

    /// Draws ASCII `text` with its top-left corner at (`x`, `y`), every font pixel
    /// as a `scale` x `scale` block; whatever falls outside the frame is clipped.
    /// Non-ASCII bytes are drawn as blanks.
    fn draw_text(&mut self, x: i64, y: i64, scale: usize, text: &str, colour: Rgb) {
        let s = scale as i64;
        for (i, byte) in text.bytes().enumerate() {
            let glyph = BASIC_LEGACY
                .get(usize::from(byte))
                .unwrap_or(&NOTHING_TO_DISPLAY);
            let gx = x + (i * 8) as i64 * s;
            for (row, &bits) in (0i64..).zip(glyph) {
                let gy = y + row * s;
                // Bit 0 is the leftmost pixel; fill each run of set bits at once.
                let mut bits = u16::from(bits);
                while bits != 0 {
                    let start = bits.trailing_zeros();
                    let run = (bits >> start).trailing_ones();
                    bits &= !(((1u16 << run) - 1) << start);
                    let (x0, x1) = (gx + i64::from(start) * s, gx + i64::from(start + run) * s);
                    if let Some(r) = Rect::clipped(x0, gy, x1, gy + s, self.width, self.height) {
                        fill_rect(&mut self.frame, self.width, r, colour);
                    }
                }
            }
        }
    }

    /// Encodes the frame buffer as a baseline 4:2:0 JPEG.
    fn encode(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.last_len + self.last_len / 4 + 1024);
        let mut encoder = Encoder::new(&mut out, self.quality);
        encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
        // Cannot fail: the writer is a Vec (infallible), the size is non-zero and fits
        // in u16 (checked in `new`), and the buffer holds exactly width*height RGB pixels.
        encoder
            .encode(
                &self.frame,
                self.jpeg_width,
                self.jpeg_height,
                ColorType::Rgb,
            )
            .expect("JPEG encoding of a well-formed in-memory RGB buffer cannot fail");
        self.last_len = out.len();
        out
    }
}

/// Formats the UTC time of day of `t` as `HH:MM:SS.mmm` (times before the Unix
/// epoch are handled too; the date is not shown).
fn format_utc_clock(t: SystemTime) -> String {
    const MS_PER_DAY: i128 = 86_400_000;
    let ms_since_epoch: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        // Round towards negative infinity so that e.g. 0.5 ms before the epoch is
        // 23:59:59.999 rather than 00:00:00.000.
        Err(e) => {
            let before = e.duration();
            let partial = i128::from(before.subsec_nanos() % 1_000_000 != 0);
            -(before.as_millis() as i128) - partial
        }
    };
    let ms_of_day = ms_since_epoch.rem_euclid(MS_PER_DAY);
    let (hours, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    format!("{hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// A background row of seven equally wide vertical bars in `colours`.
fn bar_row(width: usize, colours: &[Rgb; 7]) -> Vec<u8> {
    let mut row = vec![0; width * 3];
    for (i, &colour) in colours.iter().enumerate() {
        let (x0, x1) = (i * width / 7, (i + 1) * width / 7);
        fill_rgb(&mut row[x0 * 3..x1 * 3], colour);
    }
    row
}

/// A background row with a smooth greyscale ramp from `RAMP_LO` to `RAMP_HI`.
fn ramp_row(width: usize) -> Vec<u8> {
    let span = (width - 1).max(1);
    let range = usize::from(RAMP_HI - RAMP_LO);
    let mut row = Vec::with_capacity(width * 3);
    for x in 0..width {
        // x <= span, so the level stays within RAMP_LO..=RAMP_HI.
        let level = RAMP_LO + (range * x / span) as u8;
        row.extend_from_slice(&[level; 3]);
    }
    row
}

/// Fills every pixel of the RGB slice `dst` with `colour`.
fn fill_rgb(dst: &mut [u8], colour: Rgb) {
    for px in dst.chunks_exact_mut(3) {
        px.copy_from_slice(&colour);
    }
}

/// Fills rectangle `r` (inside the frame) of a `width` pixels wide RGB frame.
fn fill_rect(frame: &mut [u8], width: usize, r: Rect, colour: Rgb) {
    for row in frame.chunks_exact_mut(width * 3).skip(r.y).take(r.h) {
        fill_rgb(&mut row[r.x * 3..(r.x + r.w) * 3], colour);
    }
}

/// Darkens rectangle `r` (inside the frame) of a `width` pixels wide RGB frame.
fn darken_rect(frame: &mut [u8], width: usize, r: Rect) {
    for row in frame.chunks_exact_mut(width * 3).skip(r.y).take(r.h) {
        for byte in &mut row[r.x * 3..(r.x + r.w) * 3] {
            *byte >>= OVERLAY_SHIFT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2023-11-14 22:13:20.123 UTC.
    fn sample_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    }

    /// Decodes `jpeg` and returns (width, height, RGB pixels).
    fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg);
        let pixels = decoder.decode().expect("output must decode");
        let info = decoder.info().expect("info is known after decoding");
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
        (usize::from(info.width), usize::from(info.height), pixels)
    }

    /// Walks the marker segments of `jpeg` and returns the marker codes in order,
    /// asserting that it is SOI .. EOI with EOI as the very last bytes.
    fn markers(jpeg: &[u8]) -> Vec<u8> {
        assert_eq!(jpeg[..2], [0xFF, 0xD8], "must start with SOI");
        let mut found = vec![0xD8];
        let mut i = 2;
        loop {
            assert_eq!(jpeg[i], 0xFF, "marker expected at offset {i}");
            let marker = jpeg[i + 1];
            found.push(marker);
            if marker == 0xD9 {
                assert_eq!(i + 2, jpeg.len(), "EOI must end the output");
                return found;
            }
            i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            if marker == 0xDA {
                // Skip entropy-coded data: it ends at the first 0xFF that is neither
                // a stuffed 0xFF00 nor a restart marker.
                while !(jpeg[i] == 0xFF
                    && jpeg[i + 1] != 0
                    && !(0xD0..=0xD7).contains(&jpeg[i + 1]))
                {
                    i += 1;
                }
            }
        }
    }

    fn mean_abs_diff(a: &[u8], b: &[u8], width: usize, r: Rect) -> f64 {
        let mut sum = 0u64;
        for y in r.y..r.y + r.h {
            let span = (y * width + r.x) * 3..(y * width + r.x + r.w) * 3;
            sum += a[span.clone()]
                .iter()
                .zip(&b[span])
                .map(|(&p, &q)| u64::from(p.abs_diff(q)))
                .sum::<u64>();
        }
        sum as f64 / (r.w * r.h * 3) as f64
    }

    #[test]
    fn output_is_one_baseline_jpeg_of_the_right_size() {
        let mut renderer = PatternRenderer::new(1280, 720, 80);
        let jpeg = renderer.render(123, sample_time());
        assert_eq!(jpeg[..2], [0xFF, 0xD8]);
        assert_eq!(jpeg[jpeg.len() - 2..], [0xFF, 0xD9]);

        let found = markers(&jpeg);
        assert_eq!(found.iter().filter(|&&m| m == 0xD8).count(), 1, "one SOI");
        assert_eq!(
            found.iter().filter(|&&m| m == 0xC0).count(),
            1,
            "one baseline SOF0"
        );
        assert_eq!(found.iter().filter(|&&m| m == 0xDA).count(), 1, "one scan");
        assert!(!found.contains(&0xC2), "not progressive");

        let (w, h, pixels) = decode(&jpeg);
        assert_eq!((w, h), (1280, 720));
        assert_eq!(pixels.len(), 1280 * 720 * 3);
    }

    #[test]
    fn moving_box_moves() {
        let (width, height) = (320, 240);
        let mut renderer = PatternRenderer::new(width, height, 85);
        let r0 = renderer.box_rect(0).expect("box is visible");
        let r10 = renderer.box_rect(10).expect("box is visible");
        assert_ne!(r0.x, r10.x);

        let (_, _, a) = decode(&renderer.render(0, sample_time()));
        let (_, _, b) = decode(&renderer.render(10, sample_time()));
        let diff = mean_abs_diff(&a, &b, width as usize, r0);
        assert!(diff > 40.0, "box region barely changed: {diff}");
    }

    #[test]
    fn box_stays_inside_and_keeps_moving() {
        for (width, height) in [(16, 16), (17, 23), (642, 362), (1280, 720), (3840, 2160)] {
            let renderer = PatternRenderer::new(width, height, 80);
            let mut previous = None;
            for n in (0..500).chain(u64::MAX - 10..=u64::MAX) {
                let r = renderer.box_rect(n).expect("box is visible");
                assert!(r.x + r.w <= width as usize && r.y + r.h <= height as usize);
                assert!(r.y >= renderer.bands[2].rows.start);
                if n > 0 && n < 500 {
                    assert_ne!(
                        Some(r),
                        previous,
                        "box stalled at frame {n} ({width}x{height})"
                    );
                }
                previous = Some(r);
            }
        }
    }

    #[test]
    fn rendering_is_deterministic_and_does_not_leak_state() {
        let mut a = PatternRenderer::new(640, 480, 75);
        let mut b = PatternRenderer::new(640, 480, 75);
        let _ = a.render(999_999, sample_time() + Duration::from_secs(3600));
        let first = a.render(42, sample_time());
        assert_eq!(first, b.render(42, sample_time()));
        assert_eq!(first, a.render(42, sample_time()));
    }

    #[test]
    fn text_follows_frame_number_and_time() {
        let mut renderer = PatternRenderer::new(640, 480, 75);
        let base = renderer.render(7, sample_time());
        // A later frame with the box in the same place: only the counter differs.
        let same_box = (8..10_000)
            .find(|&n| renderer.box_rect(n) == renderer.box_rect(7))
            .expect("box motion is periodic");
        assert_ne!(base, renderer.render(same_box, sample_time()));
        assert_ne!(
            base,
            renderer.render(7, sample_time() + Duration::from_millis(1))
        );
    }

    #[test]
    fn overlay_is_dark_box_with_bright_text() {
        let (width, height) = (1280usize, 720usize);
        let mut renderer = PatternRenderer::new(width as u32, height as u32, 90);
        let (_, _, pixels) = decode(&renderer.render(123, sample_time()));
        // Scale 8: 12-char block is 12*64 + 48 = 816 wide, centred; 192 tall from y=144.
        let block = Rect {
            x: (width - 816) / 2,
            y: 144,
            w: 816,
            h: 192,
        };
        let (mut dark, mut bright) = (0usize, 0usize);
        for y in block.y..block.y + block.h {
            for x in block.x..block.x + block.w {
                let i = (y * width + x) * 3;
                let luma = pixels[i..i + 3].iter().map(|&v| u32::from(v)).sum::<u32>() / 3;
                if luma < 64 {
                    dark += 1;
                } else if luma > 200 {
                    bright += 1;
                }
            }
        }
        let area = block.w * block.h;
        assert!(
            dark > area / 2,
            "overlay box should be mostly dark ({dark}/{area})"
        );
        assert!(
            bright > area / 10,
            "text should be bright ({bright}/{area})"
        );
    }

    #[test]
    fn odd_and_small_sizes_work() {
        for (width, height) in [(16, 16), (642, 362), (17, 23), (1, 1), (3, 2), (2000, 16)] {
            for quality in [1, 50, 100] {
                let mut renderer = PatternRenderer::new(width, height, quality);
                for n in [0, 1, 1_000_000_000, u64::MAX] {
                    let jpeg = renderer.render(n, sample_time());
                    markers(&jpeg);
                    let (w, h, _) = decode(&jpeg);
                    assert_eq!((w, h), (width as usize, height as usize));
                }
            }
        }
    }

    #[test]
    fn quality_out_of_range_is_clamped() {
        for quality in [0, 101, 255] {
            let jpeg = PatternRenderer::new(64, 48, quality).render(1, sample_time());
            assert_eq!(decode(&jpeg).0, 64);
        }
    }

    #[test]
    #[should_panic(expected = "must not be zero")]
    fn zero_size_panics() {
        let _ = PatternRenderer::new(0, 16, 80);
    }

    #[test]
    fn utc_clock_formatting() {
        assert_eq!(format_utc_clock(sample_time()), "22:13:20.123");
        assert_eq!(format_utc_clock(UNIX_EPOCH), "00:00:00.000");
        assert_eq!(
            format_utc_clock(UNIX_EPOCH + Duration::from_nanos(86_399_999_999_999)),
            "23:59:59.999"
        );
        assert_eq!(
            format_utc_clock(UNIX_EPOCH - Duration::from_millis(1)),
            "23:59:59.999"
        );
        assert_eq!(
            format_utc_clock(UNIX_EPOCH - Duration::from_micros(500)),
            "23:59:59.999"
        );
        assert_eq!(
            format_utc_clock(UNIX_EPOCH - Duration::from_secs(86_400)),
            "00:00:00.000"
        );
    }
}
