//! When a schedule is due, in its time zone: pure functions over unix
//! seconds, with jiff doing the zone arithmetic. A wall-clock time that a
//! spring-forward gap skips runs at the first moment after the gap; one that
//! a fall-back fold repeats runs once, at its first occurrence (jiff's
//! "compatible" rule, as RFC 5545 calendars do).

use app::schedules::Recurrence;
use app::ApiError;
use jiff::civil;
use jiff::tz::TimeZone;
use jiff::Timestamp;

pub fn zone(name: &str) -> Result<TimeZone, ApiError> {
    TimeZone::get(name.trim()).map_err(|_| {
        ApiError::Invalid(format!("time_zone {name:?} is not a time zone Sagedeck knows; use an IANA name such as Europe/Berlin, America/New_York or UTC"))
    })
}

fn at(tz: &TimeZone, date: civil::Date, hour: u8, minute: u8, second: u8) -> Option<i64> {
    let dt = date.at(hour as i8, minute as i8, second as i8, 0);
    dt.to_zoned_datetime(tz.clone()).ok().map(|z| z.timestamp().as_second())
}

/// The first run strictly after `after`; `anchor` (the schedule's creation)
/// sets the phase of an `every` schedule. `None` when it never runs again.
pub fn next_after(recurrence: &Recurrence, tz: &TimeZone, anchor: i64, after: i64) -> Option<i64> {
    match *recurrence {
        Recurrence::Weekly { days, hour, minute } => {
            let mut date = Timestamp::from_second(after).ok()?.to_zoned_datetime(tz.clone()).date();
            // A week and a day covers every weekday even when today's time has passed.
            for _ in 0..9 {
                let weekday = date.weekday().to_monday_zero_offset() as usize;
                if days[weekday] {
                    if let Some(t) = at(tz, date, hour, minute, 0) {
                        if t > after {
                            return Some(t);
                        }
                    }
                }
                date = date.tomorrow().ok()?;
            }
            None
        }
        Recurrence::Every { minutes } => {
            let period = minutes as i64 * 60;
            let k = ((after - anchor).div_euclid(period) + 1).max(1);
            Some(anchor + k * period)
        }
        Recurrence::Once { year, month, day, hour, minute, second } => {
            let date = civil::Date::new(year, month as i8, day as i8).ok()?;
            at(tz, date, hour, minute, second).filter(|t| *t > after)
        }
    }
}

/// How many further runs fell in (`due`, `now`]: the ones a restart skips
/// (a schedule runs once when it catches up, not once per missed time).
pub fn missed_since(recurrence: &Recurrence, tz: &TimeZone, anchor: i64, due: i64, now: i64) -> u32 {
    let mut count = 0;
    let mut t = due;
    while let Some(next) = next_after(recurrence, tz, anchor, t) {
        if next > now || count >= 10_000 {
            break;
        }
        count += 1;
        t = next;
    }
    count
}

/// "2026-12-02 19:00 CET" for a unix time in the zone.
pub fn local_label(unix: i64, tz: &TimeZone) -> String {
    match Timestamp::from_second(unix) {
        Ok(ts) => ts.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
        Err(_) => unix.to_string(),
    }
}

/// RFC 3339 with milliseconds, UTC, as the store writes times.
pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()).unwrap_or_default()
}

pub fn parse_rfc3339(text: &str) -> Option<i64> {
    text.parse::<Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    fn weekly(text: &str) -> Recurrence {
        Recurrence::parse(text).unwrap()
    }

    #[test]
    fn weekdays_at_seven_pm_in_berlin_skip_the_weekend() {
        let berlin = zone("Europe/Berlin").unwrap();
        let r = weekly("weekdays 19:00");
        // Friday 2026-12-04 20:00 CET: next is Monday 19:00 CET (18:00 UTC).
        let next = next_after(&r, &berlin, 0, utc("2026-12-04T19:00:00Z")).unwrap();
        assert_eq!(rfc3339(next), "2026-12-07T18:00:00.000Z");
        assert_eq!(local_label(next, &berlin), "2026-12-07 19:00 CET");
        // Before 19:00 on a weekday: today.
        assert_eq!(rfc3339(next_after(&r, &berlin, 0, utc("2026-12-02T10:00:00Z")).unwrap()), "2026-12-02T18:00:00.000Z");
    }

    #[test]
    fn the_wall_clock_time_holds_across_daylight_saving_changes() {
        let ny = zone("America/New_York").unwrap();
        let r = weekly("daily 19:00");
        // Before the change (EDT, UTC-4) and after it (EST, UTC-5): 19:00 local both times.
        assert_eq!(rfc3339(next_after(&r, &ny, 0, utc("2026-10-31T12:00:00Z")).unwrap()), "2026-10-31T23:00:00.000Z");
        assert_eq!(rfc3339(next_after(&r, &ny, 0, utc("2026-11-01T12:00:00Z")).unwrap()), "2026-11-02T00:00:00.000Z");
    }

    #[test]
    fn a_time_in_the_spring_gap_runs_after_it_and_one_in_the_autumn_fold_runs_once() {
        let berlin = zone("Europe/Berlin").unwrap();
        let r = weekly("daily 02:30");
        // 2026-03-29 02:30 does not exist in Berlin: 03:30 CEST (01:30 UTC).
        assert_eq!(rfc3339(next_after(&r, &berlin, 0, utc("2026-03-28T23:00:00Z")).unwrap()), "2026-03-29T01:30:00.000Z");
        // 2026-10-25 02:30 happens twice: the first (CEST, 00:30 UTC) ...
        let first = next_after(&r, &berlin, 0, utc("2026-10-24T22:00:00Z")).unwrap();
        assert_eq!(rfc3339(first), "2026-10-25T00:30:00.000Z");
        // ... and after it the next run is the next day, not the repeat an hour later.
        assert_eq!(rfc3339(next_after(&r, &berlin, 0, first).unwrap()), "2026-10-26T01:30:00.000Z");
    }

    #[test]
    fn every_keeps_its_phase_from_creation() {
        let r = Recurrence::Every { minutes: 30 };
        let created = utc("2026-12-02T10:05:00Z");
        assert_eq!(rfc3339(next_after(&r, &TimeZone::UTC, created, created).unwrap()), "2026-12-02T10:35:00.000Z");
        assert_eq!(rfc3339(next_after(&r, &TimeZone::UTC, created, utc("2026-12-02T11:40:00Z")).unwrap()), "2026-12-02T12:05:00.000Z");
    }

    #[test]
    fn a_one_off_runs_once_and_not_when_past() {
        let tokyo = zone("Asia/Tokyo").unwrap();
        let r = weekly("once 2026-12-24 18:00");
        let t = next_after(&r, &tokyo, 0, utc("2026-12-01T00:00:00Z")).unwrap();
        assert_eq!(rfc3339(t), "2026-12-24T09:00:00.000Z");
        assert_eq!(next_after(&r, &tokyo, 0, t), None);
    }

    #[test]
    fn missed_runs_after_a_restart_are_counted_not_replayed() {
        let r = weekly("daily 19:00");
        let due = utc("2026-12-01T19:00:00Z");
        // Down from before the 1st's run to the 4th at noon: the 2nd and 3rd passed too.
        assert_eq!(missed_since(&r, &TimeZone::UTC, 0, due, utc("2026-12-04T12:00:00Z")), 2);
        assert_eq!(missed_since(&r, &TimeZone::UTC, 0, due, utc("2026-12-01T19:00:05Z")), 0);
    }

    #[test]
    fn unknown_zones_are_refused_naming_the_field() {
        let e = zone("Mars/Olympus_Mons").unwrap_err();
        assert!(matches!(e, ApiError::Invalid(_)) && e.message().starts_with("time_zone"), "{e:?}");
        assert!(zone("UTC").is_ok());
    }
}
