//! Data parallelism for training on a CPU with more than one core.
//!
//! candle's CPU matrix products gain little from a second thread at this
//! model's sizes (session 11: 93.2 samples/s on one thread, 94.1 with
//! `CANDLE_NUM_THREADS=2`), but two whole forward/backward passes on half
//! a batch each do run side by side. [`run_parts`] runs one closure per
//! share of the batch on scoped threads (the candle thread pool is kept at
//! one thread, so each pass runs inline on its own thread), and
//! [`weighted_mean_grads`] combines their gradients in a fixed order, so a
//! run is deterministic whatever the threads' timing.

use candle_core::backprop::GradStore;
use candle_core::Var;

use crate::error::{Result, VlaPolicyError};

/// `n` items cut into at most `parts` contiguous `(start, len)` shares, the
/// first ones one larger when `n` does not divide evenly; empty shares are
/// left out.
pub fn split_even(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let share = (start, len);
            start += len;
            share
        })
        .filter(|&(_, len)| len > 0)
        .collect()
}

/// Runs `f(share_index)` for each of `shares` shares, the first on the
/// calling thread and the others on scoped threads; results in share
/// order. A panicking share becomes an error.
pub fn run_parts<T: Send>(shares: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Vec<Result<T>> {
    if shares <= 1 {
        return vec![f(0)];
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (1..shares).map(|i| scope.spawn(move || f(i))).collect();
        let mut out = vec![f(0)];
        out.extend(handles.into_iter().map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(VlaPolicyError::Config(
                    "a training thread panicked; see the message above".into(),
                ))
            })
        }));
        out
    })
}

/// `Σ weights[k] · grads[k]` for every variable in `vars`, summed in share
/// order, in a store of its own (variables without a gradient in a share
/// count as zero there).
pub fn weighted_mean_grads(
    mut grads: Vec<GradStore>,
    weights: &[f64],
    vars: &[Var],
) -> Result<GradStore> {
    if grads.len() != weights.len() || grads.is_empty() {
        return Err(VlaPolicyError::Config(format!(
            "{} gradient stores for {} weights",
            grads.len(),
            weights.len()
        )));
    }
    let (first, rest) = grads.split_at(1);
    let first = &first[0];
    let w0 = weights[0];
    let sums = in_two(vars, |var| {
        let t = var.as_tensor();
        let mut sum = match first.get(t) {
            Some(g) => Some((g * w0)?),
            None => None,
        };
        for (store, &w) in rest.iter().zip(&weights[1..]) {
            if let Some(g) = store.get(t) {
                let g = (g * w)?;
                sum = Some(match sum {
                    Some(s) => (s + g)?,
                    None => g,
                });
            }
        }
        Ok(sum)
    })?;
    grads.truncate(1);
    let mut out = grads
        .pop()
        .ok_or_else(|| VlaPolicyError::Config("no gradients".into()))?;
    for (var, sum) in vars.iter().zip(sums) {
        let t = var.as_tensor();
        out.remove(t);
        if let Some(sum) = sum {
            out.insert(t, sum);
        }
    }
    Ok(out)
}

/// `f` over `items` on two threads (first half here, second on a scoped
/// thread), results in item order: for the serial stretches of a training
/// step (averaging the shares' gradients, the optimiser), whose results
/// do not depend on which thread computed what.
pub fn in_two<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> candle_core::Result<R> + Sync,
) -> candle_core::Result<Vec<R>> {
    let half = items.len().div_ceil(2);
    let (a, b) = items.split_at(half);
    let f = &f;
    std::thread::scope(|scope| {
        let second = scope.spawn(move || b.iter().map(f).collect::<candle_core::Result<Vec<R>>>());
        let mut out = a.iter().map(f).collect::<candle_core::Result<Vec<R>>>()?;
        let rest = second
            .join()
            .map_err(|_| candle_core::Error::Msg("an optimiser thread panicked".into()))??;
        out.extend(rest);
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn in_two_keeps_item_order() {
        let items: Vec<usize> = (0..9).collect();
        assert_eq!(
            crate::parallel::in_two(&items, |&i| Ok(i * 2)).unwrap(),
            (0..9).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(crate::parallel::in_two(&items, |&i| if i == 7 {
            candle_core::bail!("seven")
        } else {
            Ok(i)
        })
        .is_err());
        assert!(in_two::<usize, usize>(&[], |&i| Ok(i)).unwrap().is_empty());
    }

    #[test]
    fn shares_cover_every_item_once_in_order() {
        assert_eq!(split_even(64, 2), vec![(0, 32), (32, 32)]);
        assert_eq!(split_even(7, 3), vec![(0, 3), (3, 2), (5, 2)]);
        assert_eq!(split_even(2, 5), vec![(0, 1), (1, 1)]);
        assert_eq!(split_even(5, 0), vec![(0, 5)]);
        assert!(split_even(0, 2).is_empty());
    }

    #[test]
    fn the_mean_of_two_halves_is_the_whole_batchs_gradient() {
        // loss = mean over rows of (x · w)²: the halves' gradients, weighted
        // by their share of the rows, add up to the full batch's.
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[0.5f32, -1.0, 2.0], &dev).unwrap()).unwrap();
        let x = Tensor::arange(0f32, 12.0, &dev)
            .unwrap()
            .reshape((4, 3))
            .unwrap();
        let loss_of = |rows: &Tensor| {
            rows.broadcast_mul(w.as_tensor())
                .and_then(|y| y.sum(1))
                .and_then(|y| y.sqr())
                .and_then(|y| y.mean_all())
        };
        let full = loss_of(&x).unwrap().backward().unwrap();
        let stores = run_parts(2, |i| {
            let part = x.narrow(0, 2 * i, 2)?;
            Ok(loss_of(&part)?.backward()?)
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .unwrap();
        let mean = weighted_mean_grads(stores, &[0.5, 0.5], std::slice::from_ref(&w)).unwrap();
        let got: Vec<f32> = mean.get(w.as_tensor()).unwrap().to_vec1().unwrap();
        let want: Vec<f32> = full.get(w.as_tensor()).unwrap().to_vec1().unwrap();
        for (g, e) in got.iter().zip(&want) {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn a_failing_or_panicking_share_is_an_error_not_a_crash() {
        let out = run_parts(3, |i| match i {
            1 => Err(VlaPolicyError::Config("share 1 failed".into())),
            2 => panic!("share 2 panicked"),
            _ => Ok(i),
        });
        assert!(matches!(out[0], Ok(0)));
        assert!(out[1]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("share 1")));
        assert!(out[2]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("panicked")));
    }
}
