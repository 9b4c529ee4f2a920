//! A small, dependency-free line diff for trace mismatches.

/// The most cells of the longest-common-subsequence table computed; larger inputs fall back to
/// showing everything from the first differing line.
const MAX_CELLS: usize = 4_000_000;

/// A unified-style line diff of `expected` against `actual`: unchanged lines start with two
/// spaces, removed ones with `- `, added ones with `+ `. Runs of more than six unchanged lines
/// are folded to their first and last three.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let ops = if a.len().saturating_mul(b.len()) <= MAX_CELLS {
        lcs_ops(&a, &b)
    } else {
        prefix_ops(&a, &b)
    };
    render(&ops)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (a.len(), b.len());
    // table[i][j] = length of the LCS of a[i..] and b[j..].
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if a[i] == b[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push(Op::Same(a[i]));
            i += 1;
            j += 1;
        } else if table[at(i + 1, j)] >= table[at(i, j + 1)] {
            ops.push(Op::Removed(a[i]));
            i += 1;
        } else {
            ops.push(Op::Added(b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| Op::Removed(l)));
    ops.extend(b[j..].iter().map(|l| Op::Added(l)));
    ops
}

fn prefix_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let mut ops: Vec<Op<'a>> = a[..common].iter().map(|l| Op::Same(l)).collect();
    ops.extend(a[common..].iter().map(|l| Op::Removed(l)));
    ops.extend(b[common..].iter().map(|l| Op::Added(l)));
    ops
}

fn render(ops: &[Op<'_>]) -> String {
    const CONTEXT: usize = 3;
    let mut out = String::new();
    let mut k = 0;
    while k < ops.len() {
        if let Op::Same(_) = ops[k] {
            let start = k;
            while k < ops.len() && matches!(ops[k], Op::Same(_)) {
                k += 1;
            }
            let run = &ops[start..k];
            if run.len() > 2 * CONTEXT {
                run[..CONTEXT].iter().for_each(|op| push(&mut out, op));
                out.push_str(&format!(
                    "  … {} unchanged lines\n",
                    run.len() - 2 * CONTEXT
                ));
                run[run.len() - CONTEXT..]
                    .iter()
                    .for_each(|op| push(&mut out, op));
            } else {
                run.iter().for_each(|op| push(&mut out, op));
            }
        } else {
            push(&mut out, &ops[k]);
            k += 1;
        }
    }
    out
}

fn push(out: &mut String, op: &Op<'_>) {
    let (mark, line) = match op {
        Op::Same(l) => ("  ", l),
        Op::Removed(l) => ("- ", l),
        Op::Added(l) => ("+ ", l),
    };
    out.push_str(mark);
    out.push_str(line);
    out.push('\n');
}
