//! Work spread over the machine's cores for the drivers' bulk jobs (checking a store's records,
//! decoding channels at a restart): the result is the one a single thread gives, in the same
//! order; only the time differs.

/// `f` over `items`, in chunks on up to `threads` threads, each given at least `min_per_thread`
/// items (fewer are not worth a thread). Each chunk is handed to `f` whole and by value, so `f`
/// may drop what it has used as it goes. The results come back in the order of `items`.
pub fn map_chunks<T, R, F>(items: Vec<T>, threads: usize, min_per_thread: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(Vec<T>) -> Vec<R> + Sync,
{
    let threads = threads.min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return f(items);
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let running: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        running
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// The threads the machine can run at once (1 if it cannot say).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::map_chunks;

    #[test]
    fn chunks_on_threads_give_the_single_threads_results_in_order() {
        let items: Vec<u32> = (0..1_000).collect();
        let square = |part: Vec<u32>| part.into_iter().map(|x| x * x).collect::<Vec<_>>();
        let one = map_chunks(items.clone(), 1, 1, square);
        for threads in [2, 3, 7] {
            assert_eq!(map_chunks(items.clone(), threads, 10, square), one);
        }
        assert_eq!(one[999], 999 * 999);
    }

    #[test]
    fn fewer_items_than_a_thread_needs_stay_on_one_thread_whole() {
        let chunks = map_chunks((0..50).collect::<Vec<u32>>(), 4, 100, |part| {
            vec![part.len()]
        });
        assert_eq!(chunks, vec![50]);
        let chunks = map_chunks((0..400).collect::<Vec<u32>>(), 4, 100, |part| {
            vec![part.len()]
        });
        assert_eq!(chunks, vec![100, 100, 100, 100]);
    }
}
