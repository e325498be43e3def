//! The AVX-512 IFMA implementation (x86-64 only); see the crate's documentation.

use core::arch::x86_64::*;
use std::sync::OnceLock;

use zeroize::{Zeroize, Zeroizing};

const LIMB_BITS: usize = 52;
const MASK: u64 = (1 << LIMB_BITS) - 1;
/// Exponent bits per table lookup.
const WINDOW: usize = 5;
/// The largest modulus handled, in 512-bit vectors of 52-bit limbs (10 · 8 · 52 = 4160 bits).
const MAX_VECTORS: usize = 10;

/// Whether the running CPU has AVX-512F and AVX-512 IFMA (checked once).
pub(crate) fn available() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512ifma")
    })
}

/// [`crate::radix_bits`].
pub(crate) fn radix_bits(n_bits: usize) -> Option<usize> {
    let nv = vectors(n_bits)?;
    Some(nv * 8 * LIMB_BITS)
}

/// Vectors for a modulus of `n_bits` bits: `R = 2^(52·8·NV)` must exceed `4n`.
fn vectors(n_bits: usize) -> Option<usize> {
    if n_bits < 2 {
        return None;
    }
    let nv = (n_bits + 2).div_ceil(8 * LIMB_BITS);
    (nv <= MAX_VECTORS).then_some(nv)
}

/// [`crate::mod_exp`] on this CPU.
#[allow(unsafe_code)]
pub(crate) fn mod_exp(x: &[u8], d: &[u8], n: &[u8], rr: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let k = n.len();
    if !available() || k == 0 || n[0] == 0 || n[k - 1] & 1 == 0 {
        return None;
    }
    if x.len() > k || d.len() != k || rr.len() > k {
        return None;
    }
    let n_bits = 8 * k - n[0].leading_zeros() as usize;
    macro_rules! run {
        ($($nv:literal)*) => {
            match vectors(n_bits)? {
                // SAFETY: `available()` saw AVX-512F and AVX-512 IFMA on this CPU.
                $($nv => unsafe { Ctx::<$nv>::new(n, rr)?.pow(x, d) },)*
                _ => None,
            }
        };
    }
    run!(1 2 3 4 5 6 7 8 9 10)
}

/// A number of `8·NV` limbs in vectors.
type Vectors<const NV: usize> = [__m512i; NV];
/// The same number as plain words (limb `i` is `[i / 8][i % 8]`).
type Words<const NV: usize> = [[u64; 8]; NV];

#[inline(always)]
#[allow(unsafe_code)]
fn to_words<const NV: usize>(v: &Vectors<NV>) -> Words<NV> {
    // SAFETY: `__m512i` and `[u64; 8]` are 64 bytes each, any bit pattern is valid for both.
    unsafe { core::mem::transmute_copy(v) }
}

#[inline(always)]
#[allow(unsafe_code)]
fn from_words<const NV: usize>(w: &Words<NV>) -> Vectors<NV> {
    // SAFETY: as in `to_words`.
    unsafe { core::mem::transmute_copy(w) }
}

/// Big-endian bytes to 52-bit limbs; `None` if the value needs more than `8·NV` limbs.
fn words_from_be<const NV: usize>(be: &[u8]) -> Option<Words<NV>> {
    let mut w = [[0u64; 8]; NV];
    let limbs = w.as_flattened_mut();
    for (i, &byte) in be.iter().rev().enumerate() {
        let (limb, off) = (i * 8 / LIMB_BITS, i * 8 % LIMB_BITS);
        let byte = u64::from(byte);
        if limb >= limbs.len() {
            if byte != 0 {
                return None;
            }
            continue;
        }
        limbs[limb] |= (byte << off) & MASK;
        if off > LIMB_BITS - 8 {
            let high = byte >> (LIMB_BITS - off);
            match limbs.get_mut(limb + 1) {
                Some(l) => *l |= high,
                None if high != 0 => return None,
                None => {}
            }
        }
    }
    Some(w)
}

/// 52-bit limbs (normalised) to `k` big-endian bytes (the value must fit).
fn be_from_limbs(limbs: &[u64], k: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; k]);
    for i in 0..k {
        let (limb, off) = (i * 8 / LIMB_BITS, i * 8 % LIMB_BITS);
        let Some(&l) = limbs.get(limb) else { break };
        let mut v = l >> off;
        if off > LIMB_BITS - 8
            && let Some(&next) = limbs.get(limb + 1)
        {
            v |= next << (LIMB_BITS - off);
        }
        out[k - 1 - i] = v as u8;
    }
    out
}

/// Carries each limb's bits above 52 into the next one. The value must fit in `8·NV` limbs
/// (true for every result of [`Ctx::amm`]: it is below `2n < R`). No data-dependent branch.
#[inline(always)]
fn normalise<const NV: usize>(acc: &Vectors<NV>) -> Vectors<NV> {
    let mut w = to_words(acc);
    let mut carry = 0u64;
    for limb in w.as_flattened_mut() {
        let v = *limb + carry;
        *limb = v & MASK;
        carry = v >> LIMB_BITS;
    }
    debug_assert_eq!(carry, 0);
    let v = from_words(&w);
    w.zeroize();
    v
}

/// `r - n` if `r >= n`, else `r`, with masks (both normalised, `r < 2n`).
fn subtract_if_not_below(r: &mut [u64], n: &[u64]) {
    let mut diff = Zeroizing::new(vec![0u64; r.len()]);
    let mut borrow = 0u64;
    for ((d, &a), &b) in diff.iter_mut().zip(r.iter()).zip(n) {
        let v = a.wrapping_sub(b).wrapping_sub(borrow);
        *d = v & MASK;
        borrow = v >> 63;
    }
    // borrow = 1: r < n, keep r.
    let keep = borrow.wrapping_neg();
    for (a, d) in r.iter_mut().zip(diff.iter()) {
        *a = (*a & keep) | (*d & !keep);
    }
}

/// A modulus prepared for Montgomery arithmetic in `NV` vectors.
struct Ctx<const NV: usize> {
    n: Vectors<NV>,
    n_words: Words<NV>,
    /// `-n⁻¹ mod 2^52`.
    k0: u64,
    /// `R² mod n`.
    rr: Vectors<NV>,
    /// Bytes of the modulus and the result.
    k: usize,
}

impl<const NV: usize> Ctx<NV> {
    /// `None` if `n` or `rr` do not fit or `rr` is not below `n` (the caller has checked that
    /// `n` is odd).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn new(n: &[u8], rr: &[u8]) -> Option<Self> {
        let n_words = words_from_be::<NV>(n)?;
        let rr_words = words_from_be::<NV>(rr)?;
        if !below(rr_words.as_flattened(), n_words.as_flattened()) {
            return None;
        }
        let n0 = n_words[0][0];
        // n0⁻¹ mod 2^64 by Newton's iteration (n0 odd): each step doubles the correct bits.
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        if n0.wrapping_mul(inv) != 1 {
            return None;
        }
        Some(Self {
            n: from_words(&n_words),
            n_words,
            k0: inv.wrapping_neg() & MASK,
            rr: from_words(&rr_words),
            k: n.len(),
        })
    }

    /// `a · b · R⁻¹ mod n`, below `2n` for `a, b < 2n`; `b` as normalised limbs.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn amm(&self, a: &Vectors<NV>, b: &[u64]) -> Vectors<NV> {
        let zero = _mm512_setzero_si512();
        let mut acc = [zero; NV];
        for &bi in b {
            let bv = _mm512_set1_epi64(bi as i64);
            for (c, &ak) in acc.iter_mut().zip(a) {
                *c = _mm512_madd52lo_epu64(*c, ak, bv);
            }
            // y makes the lowest limb divisible by 2^52.
            let low = _mm_cvtsi128_si64(_mm512_castsi512_si128(acc[0])) as u64;
            let y = low.wrapping_mul(self.k0) & MASK;
            let yv = _mm512_set1_epi64(y as i64);
            for (c, &nk) in acc.iter_mut().zip(&self.n) {
                *c = _mm512_madd52lo_epu64(*c, nk, yv);
            }
            let carry = (_mm_cvtsi128_si64(_mm512_castsi512_si128(acc[0])) as u64) >> LIMB_BITS;
            // Divide by 2^52: every limb moves down one lane.
            for k in 0..NV - 1 {
                acc[k] = _mm512_alignr_epi64(acc[k + 1], acc[k], 1);
            }
            acc[NV - 1] = _mm512_alignr_epi64(zero, acc[NV - 1], 1);
            acc[0] = _mm512_mask_add_epi64(acc[0], 1, acc[0], _mm512_set1_epi64(carry as i64));
            // The high halves of this step's products belong one limb up: after the shift,
            // at the same lanes.
            for ((c, &ak), &nk) in acc.iter_mut().zip(a).zip(&self.n) {
                *c = _mm512_madd52hi_epu64(*c, ak, bv);
                *c = _mm512_madd52hi_epu64(*c, nk, yv);
            }
        }
        normalise(&acc)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul(&self, a: &Vectors<NV>, b: &Vectors<NV>) -> Vectors<NV> {
        let mut w = to_words(b);
        let r = self.amm(a, w.as_flattened());
        w.zeroize();
        r
    }

    /// Table entry `index`, reading every entry (masked moves).
    #[target_feature(enable = "avx512f")]
    fn select(table: &[Words<NV>], index: u64) -> Vectors<NV> {
        let mut r = [_mm512_setzero_si512(); NV];
        let wanted = _mm512_set1_epi64(index as i64);
        for (t, entry) in table.iter().enumerate() {
            let m = _mm512_cmpeq_epi64_mask(_mm512_set1_epi64(t as i64), wanted);
            let e = from_words(entry);
            for (rk, &ek) in r.iter_mut().zip(&e) {
                *rk = _mm512_mask_mov_epi64(*rk, m, ek);
            }
        }
        r
    }

    /// `x^d mod n`, `d` exactly `k` bytes, `x < n` (checked).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn pow(&self, x: &[u8], d: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let xw = words_from_be::<NV>(x)?;
        if !below(xw.as_flattened(), self.n_words.as_flattened()) {
            return None;
        }
        let mut one = [[0u64; 8]; NV];
        one[0][0] = 1;
        let x_mont = self.mul(&from_words(&xw), &self.rr);
        let mut table = Zeroizing::new(vec![[[0u64; 8]; NV]; 1 << WINDOW]);
        table[0] = to_words(&self.mul(&from_words(&one), &self.rr));
        table[1] = to_words(&x_mont);
        let mut prev = x_mont;
        for entry in table.iter_mut().skip(2) {
            prev = self.mul(&prev, &x_mont);
            *entry = to_words(&prev);
        }
        // The exponent as little-endian 64-bit words, with room for the top window.
        let bits = 8 * d.len();
        let mut e = Zeroizing::new(vec![0u64; bits / 64 + 2]);
        for (i, &byte) in d.iter().rev().enumerate() {
            e[i / 8] |= u64::from(byte) << (8 * (i % 8));
        }
        let window = |p: usize| -> u64 {
            let (w, o) = (p / 64, p % 64);
            let mut v = e[w] >> o;
            if o > 64 - WINDOW {
                v |= e[w + 1] << (64 - o);
            }
            v & ((1 << WINDOW) - 1)
        };
        let windows = bits.div_ceil(WINDOW);
        let mut acc = Self::select(&table, window((windows - 1) * WINDOW));
        for w in (0..windows - 1).rev() {
            for _ in 0..WINDOW {
                acc = self.mul(&acc, &acc);
            }
            acc = self.mul(&acc, &Self::select(&table, window(w * WINDOW)));
        }
        let mut r = to_words(&self.amm(&acc, one.as_flattened()));
        subtract_if_not_below(r.as_flattened_mut(), self.n_words.as_flattened());
        let out = be_from_limbs(r.as_flattened(), self.k);
        r.zeroize();
        Some(out)
    }
}

/// `a < b` for normalised limbs of equal length (public values only: it branches).
fn below(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openssl::bn::{BigNum, BigNumContext};

    fn rr(n: &BigNum) -> Vec<u8> {
        let mut ctx = BigNumContext::new().unwrap();
        let mut p = BigNum::new().unwrap();
        p.set_bit(2 * radix_bits(n.num_bits() as usize).unwrap() as i32)
            .unwrap();
        let mut r = BigNum::new().unwrap();
        r.nnmod(&p, n, &mut ctx).unwrap();
        r.to_vec()
    }

    fn openssl_pow(x: &BigNum, d: &BigNum, n: &BigNum) -> Vec<u8> {
        let mut ctx = BigNumContext::new().unwrap();
        let mut r = BigNum::new().unwrap();
        r.mod_exp(x, d, n, &mut ctx).unwrap();
        r.to_vec_padded(n.num_bytes()).unwrap()
    }

    fn odd_modulus(bits: i32) -> BigNum {
        let mut n = BigNum::new().unwrap();
        n.rand(bits, openssl::bn::MsbOption::ONE, true).unwrap();
        n
    }

    /// Agrees with OpenSSL on edge values and random ones, for RSA moduli of the sizes we
    /// use, odd moduli of every vector count and odd bit lengths, and moduli of all-one and
    /// almost-all-zero limbs.
    #[test]
    fn agrees_with_openssl() {
        if !available() {
            eprintln!("this CPU has no AVX-512 IFMA: checking that mod_exp declines");
            let n = odd_modulus(1024);
            let k = n.num_bytes() as usize;
            assert!(mod_exp(&[2], &vec![1; k], &n.to_vec(), &rr(&n)).is_none());
            return;
        }
        let mut moduli: Vec<BigNum> = [2048u32, 3072, 4096]
            .iter()
            .map(|&b| {
                openssl::rsa::Rsa::generate(b)
                    .unwrap()
                    .n()
                    .to_owned()
                    .unwrap()
            })
            .collect();
        for bits in [
            64, 414, 415, 416, 830, 1000, 1021, 1536, 2047, 3000, 3329, 4158,
        ] {
            moduli.push(odd_modulus(bits));
        }
        // Extreme limbs: all ones (every product and carry at its largest), and 2^(b-1) + 1
        // (almost all zeros), each at the largest size of its vector count.
        for bits in [414, 3326, 4158] {
            let mut p = BigNum::new().unwrap();
            p.set_bit(bits).unwrap();
            moduli.push(&p - &BigNum::from_u32(1).unwrap());
            let mut q = BigNum::new().unwrap();
            q.set_bit(bits - 1).unwrap();
            moduli.push(&q + &BigNum::from_u32(1).unwrap());
        }
        for n in &moduli {
            let k = n.num_bytes();
            let one = BigNum::from_u32(1).unwrap();
            let n_minus_1 = n - &one;
            let mut cases = vec![
                (BigNum::from_u32(0).unwrap(), BigNum::from_u32(0).unwrap()),
                (BigNum::from_u32(0).unwrap(), BigNum::from_u32(5).unwrap()),
                (BigNum::from_u32(2).unwrap(), BigNum::from_u32(0).unwrap()),
                (BigNum::from_u32(2).unwrap(), BigNum::from_u32(1).unwrap()),
                (n_minus_1.to_owned().unwrap(), n_minus_1.to_owned().unwrap()),
                (BigNum::from_u32(3).unwrap(), n_minus_1.to_owned().unwrap()),
            ];
            for _ in 0..4 {
                let (mut x, mut d) = (BigNum::new().unwrap(), BigNum::new().unwrap());
                n.rand_range(&mut x).unwrap();
                n.rand_range(&mut d).unwrap();
                cases.push((x, d));
            }
            let rr = rr(n);
            for (x, d) in &cases {
                let got = mod_exp(&x.to_vec(), &d.to_vec_padded(k).unwrap(), &n.to_vec(), &rr)
                    .unwrap_or_else(|| panic!("declined a {}-bit modulus", n.num_bits()));
                assert_eq!(
                    *got,
                    openssl_pow(x, d, n),
                    "{}-bit modulus, x {} bits, d {} bits",
                    n.num_bits(),
                    x.num_bits(),
                    d.num_bits()
                );
            }
        }
    }

    /// Bad input is declined, not computed: even modulus, x not below n, exponent not
    /// exactly the modulus length, modulus too large, R² longer than the modulus or not
    /// below it.
    #[test]
    fn declines_bad_input() {
        if !available() {
            return assert!(mod_exp(&[1], &[1], &[3], &[1]).is_none());
        }
        let n = odd_modulus(1024);
        let k = n.num_bytes() as usize;
        let (nb, rr) = (n.to_vec(), rr(&n));
        let d = vec![7u8; k];
        assert!(mod_exp(&[2], &d, &nb, &rr).is_some());
        let mut even = nb.clone();
        even[k - 1] &= 0xfe;
        assert!(mod_exp(&[2], &d, &even, &rr).is_none());
        assert!(mod_exp(&nb, &d, &nb, &rr).is_none());
        let mut above = nb.clone();
        above[k - 1] = 0xff;
        assert!(mod_exp(&above, &d, &nb, &rr).is_none());
        assert!(mod_exp(&[2], &d[1..], &nb, &rr).is_none());
        assert!(mod_exp(&[2], &[&[0u8][..], &d].concat(), &nb, &rr).is_none());
        assert!(mod_exp(&[2], &d, &[&[0u8][..], &nb].concat(), &rr).is_none());
        let big = odd_modulus(4159);
        let kb = big.num_bytes() as usize;
        assert!(radix_bits(4159).is_none());
        assert!(mod_exp(&[2], &vec![1; kb], &big.to_vec(), &[1]).is_none());
        assert!(mod_exp(&[2], &d, &nb, &vec![1; k + 1]).is_none());
        assert!(mod_exp(&[2], &d, &nb, &nb).is_none());
    }

    #[test]
    fn limb_conversion_round_trips() {
        let n = odd_modulus(3072);
        let b = n.to_vec();
        let w = words_from_be::<8>(&b).unwrap();
        assert_eq!(*be_from_limbs(w.as_flattened(), b.len()), b);
        assert!(w.as_flattened().iter().all(|&l| l <= MASK));
        assert!(words_from_be::<1>(&[1u8; 53]).is_none());
        assert!(words_from_be::<1>(&[&[0u8; 20][..], &[1u8; 52]].concat()).is_some());
    }
}
