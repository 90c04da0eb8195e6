//! Five-field cron expressions (minute hour day-of-month month day-of-week, UTC): `*`,
//! numbers, lists `1,15`, ranges `1-5` and steps `*/15` or `8-18/2`. Day-of-week 0 and 7 are
//! Sunday. As in Vixie cron, when both day fields are restricted either may match.

use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Looking further than this for the next or previous time means the expression never fires.
const HORIZON_MINUTES: i64 = 366 * 24 * 60 * 5;

impl Cron {
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("cron `{expression}`: expected 5 fields (minute hour day month weekday)"));
        };
        let mut weekdays = field(weekday, 0, 7, "weekday")?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Cron {
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")?,
            days: field(day, 1, 31, "day of month")?,
            months: field(month, 1, 12, "month")?,
            weekdays,
            days_restricted: day != "*",
            weekdays_restricted: weekday != "*",
        })
    }

    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let day = self.days[t.day() as usize];
        let weekday = self.weekdays[t.weekday().num_days_from_sunday() as usize];
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            _ => day && weekday,
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[t.month() as usize]
            && day_ok
    }

    /// The first firing time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = t.duration_trunc(Duration::minutes(1)).ok()? + Duration::minutes(1);
        for _ in 0..HORIZON_MINUTES {
            if self.matches(at) {
                return Some(at);
            }
            at += Duration::minutes(1);
        }
        None
    }

    /// The last firing time at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = t.duration_trunc(Duration::minutes(1)).ok()?;
        for _ in 0..HORIZON_MINUTES {
            if self.matches(at) {
                return Some(at);
            }
            at -= Duration::minutes(1);
        }
        None
    }
}

fn field(text: &str, min: u32, max: u32, name: &str) -> Result<Vec<bool>, String> {
    let mut allowed = vec![false; max as usize + 1];
    let bad = |why: &str| format!("cron {name} field `{text}`: {why}");
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| bad("step is not a number"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad("step 0"));
        }
        let (low, high) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => {
                    (num(a).ok_or_else(|| bad("not a number"))?, num(b).ok_or_else(|| bad("not a number"))?)
                }
                None => {
                    let n = num(r).ok_or_else(|| bad("not a number"))?;
                    (n, if part.contains('/') { max } else { n })
                }
            },
        };
        if low < min || high > max || low > high {
            return Err(bad(&format!("values must be within {min}-{max}")));
        }
        for v in (low..=high).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Ok(allowed)
}

fn num(s: &str) -> Option<u32> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn next_and_previous() {
        let hourly = Cron::parse("0 * * * *").unwrap();
        assert_eq!(hourly.next_after(at(2026, 11, 23, 10, 0)), Some(at(2026, 11, 23, 11, 0)));
        assert_eq!(hourly.last_at_or_before(at(2026, 11, 23, 10, 59)), Some(at(2026, 11, 23, 10, 0)));
        let weekdays = Cron::parse("30 3 * * 1-5").unwrap();
        // 2026-11-21 is a Saturday: the next weekday 03:30 is Monday the 23rd.
        assert_eq!(weekdays.next_after(at(2026, 11, 21, 4, 0)), Some(at(2026, 11, 23, 3, 30)));
        let quarter = Cron::parse("*/15 8-9 * * *").unwrap();
        assert_eq!(quarter.next_after(at(2026, 11, 23, 9, 50)), Some(at(2026, 11, 24, 8, 0)));
    }

    #[test]
    fn bad_expressions_say_which_field() {
        assert!(Cron::parse("0 * * *").unwrap_err().contains("5 fields"));
        assert!(Cron::parse("61 * * * *").unwrap_err().contains("minute"));
        assert!(Cron::parse("0 * * * mon").unwrap_err().contains("weekday"));
    }
}
