//! A picture reduced to what health needs: a small grid of luma means.
//!
//! Every picture, whatever its size or coding, becomes [`WIDTH`] × [`HEIGHT`] cells, each
//! the mean luma (full range, 0–255) of the part of the picture it covers. Averaging
//! removes most sensor noise and compression detail, so two thumbnails of one still scene
//! differ by little, yet any motion or lighting change moves many cells.
//!
//! Cost: a JPEG is decoded at 1/8 of its size (jpeg-decoder's scaled IDCT decodes only
//! the DC coefficients' worth of detail: about 2 ms for a 1280×720 frame on this
//! machine's cores), then its luma (BT.601, from the decoder's RGB: the decoder's
//! "no transform" output lays components out per row, not per pixel, in the version
//! used) is box-averaged onto the grid.
//!
//! Invariants: a thumbnail always has exactly `WIDTH * HEIGHT` cells; decoding never
//! panics on hostile input (jpeg-decoder returns errors; sizes are checked before
//! indexing).

use jpeg_decoder::{Decoder, PixelFormat};

/// Cells across.
pub const WIDTH: usize = 96;
/// Cells down.
pub const HEIGHT: usize = 54;

/// Largest picture sampled, in pixels (8K is 33.2 Mpx): the decoder allocates by the
/// size the header claims, so a bigger one is refused before decoding.
pub const MAX_PIXELS: u64 = 36_000_000;

/// Why a picture could not be reduced (the sample is skipped, the stream is not judged on
/// it).
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// Not a JPEG the decoder can read.
    #[error("cannot decode the JPEG: {0}")]
    Decode(#[from] jpeg_decoder::Error),
    /// A colour model without a luma channel first (CMYK) or an empty picture.
    #[error("unsupported picture: {0}")]
    Unsupported(&'static str),
    /// The header claims more pixels than [`MAX_PIXELS`].
    #[error("a {width}x{height} picture is larger than sampled")]
    TooLarge {
        /// Claimed width.
        width: u16,
        /// Claimed height.
        height: u16,
    },
}

/// BT.601 luma of an RGB pixel (what JPEG's Y channel holds), in integer arithmetic.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let y = 19_595 * u32::from(r) + 38_470 * u32::from(g) + 7_471 * u32::from(b);
    ((y + 32_768) >> 16).min(255) as u8
}

/// A picture's luma on a [`WIDTH`] × [`HEIGHT`] grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    cells: Vec<f32>,
}

impl Thumbnail {
    /// Decodes `jpeg` at reduced size and averages its luma onto the grid.
    pub fn from_jpeg(jpeg: &[u8]) -> Result<Thumbnail, ThumbnailError> {
        Thumbnail::from_jpeg_within(jpeg, MAX_PIXELS)
    }

    /// [`Thumbnail::from_jpeg`] refusing pictures over `max_pixels` (the fuzz target uses
    /// a small limit).
    pub fn from_jpeg_within(jpeg: &[u8], max_pixels: u64) -> Result<Thumbnail, ThumbnailError> {
        let mut decoder = Decoder::new(jpeg);
        decoder.read_info()?;
        let info = decoder
            .info()
            .ok_or(ThumbnailError::Unsupported("no picture header"))?;
        if u64::from(info.width) * u64::from(info.height) > max_pixels {
            return Err(ThumbnailError::TooLarge {
                width: info.width,
                height: info.height,
            });
        }
        let channels = match info.pixel_format {
            PixelFormat::L8 => 1,
            PixelFormat::RGB24 => 3,
            PixelFormat::L16 => return Err(ThumbnailError::Unsupported("16-bit samples")),
            PixelFormat::CMYK32 => return Err(ThumbnailError::Unsupported("CMYK")),
        };
        let (width, height) = decoder.scale(
            info.width.div_ceil(8).max(1),
            info.height.div_ceil(8).max(1),
        )?;
        let pixels = decoder.decode()?;
        let (width, height) = (usize::from(width), usize::from(height));
        if width == 0 || height == 0 || pixels.len() < width * height * channels {
            return Err(ThumbnailError::Unsupported("an empty or truncated picture"));
        }
        Ok(Thumbnail::from_luma(width, height, |x, y| {
            let at = (y * width + x) * channels;
            match pixels.get(at..at + channels) {
                Some(&[r, g, b]) => luma(r, g, b),
                Some(&[l]) => l,
                _ => 0,
            }
        }))
    }

    /// Box-averages a `width` × `height` luma plane onto the grid: each cell is the mean
    /// of the pixels whose centres fall inside it (at least one: a plane smaller than the
    /// grid repeats pixels).
    pub fn from_luma(width: usize, height: usize, luma: impl Fn(usize, usize) -> u8) -> Thumbnail {
        let span = |cell: usize, cells: usize, size: usize| {
            let start = cell * size / cells;
            let end = ((cell + 1) * size / cells).max(start + 1).min(size);
            start.min(size - 1)..end
        };
        let mut cells = Vec::with_capacity(WIDTH * HEIGHT);
        for cy in 0..HEIGHT {
            let rows = span(cy, HEIGHT, height);
            for cx in 0..WIDTH {
                let cols = span(cx, WIDTH, width);
                let mut sum = 0u32;
                let mut count = 0u32;
                for y in rows.clone() {
                    for x in cols.clone() {
                        sum += u32::from(luma(x, y));
                        count += 1;
                    }
                }
                cells.push(sum as f32 / count.max(1) as f32);
            }
        }
        Thumbnail { cells }
    }

    /// Mean luma, 0–255.
    pub fn mean(&self) -> f64 {
        self.cells.iter().map(|&c| f64::from(c)).sum::<f64>() / self.cells.len() as f64
    }

    /// Standard deviation of the cells, in luma levels: near 0 for a uniform picture (a
    /// lens cap, a grey screen), tens for a scene.
    pub fn spread(&self) -> f64 {
        let mean = self.mean();
        let variance = self
            .cells
            .iter()
            .map(|&c| (f64::from(c) - mean).powi(2))
            .sum::<f64>()
            / self.cells.len() as f64;
        variance.sqrt()
    }

    /// Mean absolute difference between the two pictures' cells, in luma levels.
    pub fn difference(&self, other: &Thumbnail) -> f64 {
        self.cells
            .iter()
            .zip(&other.cells)
            .map(|(&a, &b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / self.cells.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 320×180 gradient brightened by `shift`, with up to `noise` levels of noise, as a
    /// JPEG.
    fn jpeg(shift: u8, noise: u8) -> Vec<u8> {
        let (w, h) = (320u16, 180u16);
        let mut seed = 0x2545_f491_u32.wrapping_add(u32::from(shift));
        let mut rgb = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
        for y in 0..h {
            for x in 0..w {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let n = if noise == 0 {
                    0
                } else {
                    (seed % u32::from(noise)) as u8
                };
                let v = ((x / 2 + y / 2) as u8)
                    .saturating_add(shift)
                    .saturating_add(n);
                rgb.extend_from_slice(&[v, v, v]);
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn the_same_picture_gives_the_same_thumbnail_and_another_one_differs() {
        let a = Thumbnail::from_jpeg(&jpeg(0, 0)).unwrap();
        let b = Thumbnail::from_jpeg(&jpeg(0, 0)).unwrap();
        let c = Thumbnail::from_jpeg(&jpeg(30, 0)).unwrap();
        assert_eq!(a.difference(&b), 0.0);
        assert!(a.difference(&c) > 25.0, "{}", a.difference(&c));
        // The gradient's mean: 80 + 45.
        assert!((a.mean() - 125.0).abs() < 3.0, "mean {}", a.mean());
        assert!(
            a.spread() > 20.0,
            "a gradient is not uniform: {}",
            a.spread()
        );
    }

    #[test]
    fn a_black_picture_is_dark_and_uniform() {
        let black = Thumbnail::from_luma(64, 36, |_, _| 0);
        assert_eq!(black.mean(), 0.0);
        assert_eq!(black.spread(), 0.0);
        let grey = Thumbnail::from_luma(640, 360, |_, _| 128);
        assert_eq!(grey.mean(), 128.0);
        assert_eq!(grey.spread(), 0.0);
    }

    #[test]
    fn noise_shows_as_a_small_difference_not_none() {
        let a = Thumbnail::from_jpeg(&jpeg(0, 24)).unwrap();
        let b = Thumbnail::from_jpeg(&jpeg(1, 24)).unwrap();
        let d = a.difference(&b);
        assert!(d > 0.0 && d < 4.0, "{d}");
    }

    #[test]
    fn planes_smaller_than_the_grid_and_odd_sizes_fill_every_cell() {
        for (w, h) in [(1, 1), (7, 3), (97, 55), (1920, 1080)] {
            let t = Thumbnail::from_luma(w, h, |x, y| ((x + y) % 256) as u8);
            assert_eq!(t.cells.len(), WIDTH * HEIGHT, "{w}x{h}");
        }
    }

    #[test]
    fn a_picture_over_the_limit_is_refused_before_decoding() {
        let jpeg = jpeg(0, 0);
        assert!(matches!(
            Thumbnail::from_jpeg_within(&jpeg, 320 * 180 - 1),
            Err(ThumbnailError::TooLarge {
                width: 320,
                height: 180
            })
        ));
        assert!(Thumbnail::from_jpeg_within(&jpeg, 320 * 180).is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            &b""[..],
            b"\xFF\xD8",
            b"\xFF\xD8\xFF\xC0\x00\x01",
            b"not a jpeg",
        ] {
            assert!(Thumbnail::from_jpeg(input).is_err());
        }
        let mut truncated = jpeg(0, 0);
        truncated.truncate(truncated.len() / 3);
        let _ = Thumbnail::from_jpeg(&truncated);
    }
}
