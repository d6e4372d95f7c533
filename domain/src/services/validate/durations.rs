//! Lengths of time in text, in days: how long a journey takes ("four days' ride",
//! "三天路程") and how much time a chapter says passed ("two days later", "the next
//! morning", "过了三天", "次日").

use super::doc::{has, has_any, words_before};

const EN_NUMBERS: &[(&str, f64)] = &[
    ("a", 1.0),
    ("an", 1.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("few", 3.0),
    ("several", 3.0),
    ("half", 0.5),
];

const EN_UNITS: &[(&str, f64)] = &[
    ("hour", 1.0 / 24.0),
    ("hours", 1.0 / 24.0),
    ("day", 1.0),
    ("days", 1.0),
    ("day's", 1.0),
    ("days'", 1.0),
    ("night", 1.0),
    ("nights", 1.0),
    ("week", 7.0),
    ("weeks", 7.0),
    ("week's", 7.0),
    ("weeks'", 7.0),
    ("month", 30.0),
    ("months", 30.0),
    ("year", 365.0),
    ("years", 365.0),
];

const ZH_UNITS: &[(&str, f64)] = &[
    ("个时辰", 1.0 / 12.0),
    ("时辰", 1.0 / 12.0),
    ("小时", 1.0 / 24.0),
    ("天", 1.0),
    ("日", 1.0),
    ("夜", 1.0),
    ("周", 7.0),
    ("星期", 7.0),
    ("个月", 30.0),
    ("月", 30.0),
    ("年", 365.0),
];

fn en_number(w: &str) -> Option<f64> {
    w.parse::<f64>()
        .ok()
        .or_else(|| EN_NUMBERS.iter().find(|(n, _)| *n == w).map(|(_, v)| *v))
}

fn zh_digit(c: char) -> Option<u32> {
    match c {
        '一' => Some(1),
        '二' | '两' => Some(2),
        '三' => Some(3),
        '四' => Some(4),
        '五' => Some(5),
        '六' => Some(6),
        '七' => Some(7),
        '八' => Some(8),
        '九' => Some(9),
        _ => c.to_digit(10),
    }
}

/// A Chinese number ending right before byte `to` ("三", "十五", "二十", "3"), if any.
fn zh_number_before(s: &str, to: usize) -> Option<f64> {
    let mut digits: Vec<char> = s[..to]
        .chars()
        .rev()
        .take_while(|&c| c == '十' || zh_digit(c).is_some())
        .collect();
    digits.reverse();
    if digits.is_empty() {
        return None;
    }
    if digits.iter().all(|c| c.is_ascii_digit()) {
        return digits.iter().collect::<String>().parse().ok();
    }
    let mut total = 0u32;
    let mut current = 0u32;
    for c in digits {
        if c == '十' {
            total += current.max(1) * 10;
            current = 0;
        } else {
            current = current * 10 + zh_digit(c).unwrap_or(0);
        }
    }
    Some(f64::from(total + current))
}

/// Every "N unit" in `s` (lower case), in days.
pub(super) fn amounts(s: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (unit, days) in EN_UNITS {
        for b in super::doc::word_positions(s, unit) {
            let before = words_before(s, b, 1);
            if let Some(n) = before.first().and_then(|w| en_number(w))
                && !seen.contains(&b)
            {
                seen.push(b);
                out.push(n * days);
            }
        }
    }
    for (unit, days) in ZH_UNITS {
        let mut from = 0;
        while let Some(i) = s[from..].find(unit) {
            let b = from + i;
            // "个月" also contains "月": count the longer unit once.
            let longer = ZH_UNITS.iter().any(|(u, _)| {
                u.len() > unit.len() && u.ends_with(unit) && s[..b + unit.len()].ends_with(u)
            });
            if !longer {
                let at = if s[..b].ends_with('个') {
                    b - '个'.len_utf8()
                } else {
                    b
                };
                if let Some(n) = zh_number_before(s, at) {
                    out.push(n * days);
                }
            }
            from = b + unit.len();
        }
    }
    out
}

/// How long a journey takes, from a route's description ("four days' ride", "3 days",
/// "三天路程").
pub(super) fn journey_days(s: &str) -> Option<f64> {
    amounts(s).into_iter().reduce(f64::max)
}

const PASSED: &[&str] = &[
    "later",
    "passed",
    "after",
    "went by",
    "afterwards",
    "afterward",
    "journey",
    "ride",
    "riding",
    "travel",
    "travelled",
    "traveled",
    "march",
    "sailing",
    "on the road",
    "后",
    "过了",
    "过去",
    "之后",
    "路程",
    "赶路",
    "日夜兼程",
];

const SAME_DAY: &[&str] = &[
    "that evening",
    "that night",
    "an hour later",
    "moments later",
    "a moment later",
    "the same day",
    "minutes later",
    "that afternoon",
    "soon after",
    "shortly after",
    "当晚",
    "当天",
    "片刻后",
    "不多时",
    "转眼",
    "同一天",
    "一炷香",
];

const NEXT_DAY: &[&str] = &[
    "the next day",
    "the next morning",
    "the following day",
    "the following morning",
    "next morning",
    "the day after",
    "第二天",
    "次日",
    "翌日",
    "隔天",
];

/// How much time sentence `s` (lower case) says passes, in days, if it says.
pub(super) fn elapsed(s: &str) -> Option<f64> {
    if has_any(s, PASSED) {
        let a = amounts(s);
        if !a.is_empty() {
            return Some(a.iter().sum());
        }
    }
    if has_any(s, NEXT_DAY) {
        return Some(1.0);
    }
    if has_any(s, SAME_DAY) || has(s, "meanwhile") {
        return Some(0.0);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journeys_in_english_and_chinese() {
        assert_eq!(journey_days("four days' ride along the river"), Some(4.0));
        assert_eq!(journey_days("a week by boat"), Some(7.0));
        assert_eq!(journey_days("三天路程"), Some(3.0));
        assert_eq!(journey_days("快马十五日"), Some(15.0));
        assert_eq!(journey_days("两个月"), Some(60.0));
        assert_eq!(journey_days("a long way"), None);
    }

    #[test]
    fn time_passing() {
        assert_eq!(elapsed("four days passed."), Some(4.0));
        assert_eq!(elapsed("two days later, they rode on."), Some(2.0));
        assert_eq!(elapsed("the next morning he saddled up."), Some(1.0));
        assert_eq!(elapsed("that evening the rain came."), Some(0.0));
        assert_eq!(elapsed("过了三天，"), Some(3.0));
        assert_eq!(elapsed("次日清晨，"), Some(1.0));
        assert_eq!(elapsed("he had four brothers."), None);
        assert_eq!(elapsed("she smiled."), None);
    }
}
