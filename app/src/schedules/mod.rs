//! Schedules: "stop this notebook every weekday at 19:00", "delete this
//! endpoint if idle for 24 h", "keep this endpoint at one instance at
//! night". The types, the parser of the `when` text (pure, so the form
//! checks it as it is typed), the server functions and the panel shown on
//! a notebook's and an endpoint's page. Time zones and the runner are the
//! server's (`server/src/schedules`).

mod panel;

pub use panel::{AllSchedules, SchedulePanel, ScheduleTable, Scheduled};

use crate::endpoints::Backend;
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What a schedule does when it is due.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ScheduleAction {
    StopNotebook { name: String },
    StartNotebook { name: String },
    /// Deletes the endpoint (its configuration kept, so the journal can
    /// recreate it) if nothing called it for `idle_hours`; otherwise skips.
    /// (Numbers are i64 so that a negative one is refused naming its field,
    /// not by the JSON decoder.)
    DeleteEndpointIfIdle { backend: Backend, name: String, idle_hours: i64 },
    /// Sets the auto-scaling minimum (the policy's other settings kept).
    SetMinInstances { backend: Backend, name: String, min_instances: i64 },
}

impl ScheduleAction {
    /// The resource it acts on, as the journal and the panels name it:
    /// "notebook/NAME", "sagemaker/NAME", "local/NAME".
    pub fn resource(&self) -> String {
        match self {
            ScheduleAction::StopNotebook { name } | ScheduleAction::StartNotebook { name } => format!("notebook/{name}"),
            ScheduleAction::DeleteEndpointIfIdle { backend, name, .. } | ScheduleAction::SetMinInstances { backend, name, .. } => {
                format!("{}/{name}", backend.slug())
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ScheduleAction::StopNotebook { name } => format!("stop notebook {name}"),
            ScheduleAction::StartNotebook { name } => format!("start notebook {name}"),
            ScheduleAction::DeleteEndpointIfIdle { name, idle_hours, .. } => format!("delete endpoint {name} if idle for {idle_hours} h"),
            ScheduleAction::SetMinInstances { name, min_instances, .. } => format!("set endpoint {name}'s minimum to {min_instances} instance(s)"),
        }
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        match self {
            ScheduleAction::StopNotebook { name } | ScheduleAction::StartNotebook { name } => {
                crate::names::NotebookName::parse(name)?;
            }
            ScheduleAction::DeleteEndpointIfIdle { name, idle_hours, .. } => {
                crate::names::EndpointName::parse(name)?;
                if !(1..=crate::costs::MAX_IDLE_HOURS as i64).contains(idle_hours) {
                    return Err(ApiError::Invalid(format!(
                        "idle_hours must be from 1 to {} hours, not {idle_hours}",
                        crate::costs::MAX_IDLE_HOURS
                    )));
                }
            }
            ScheduleAction::SetMinInstances { backend, name, min_instances } => {
                crate::names::EndpointName::parse(name)?;
                // Application Auto Scaling refuses a minimum of 0 for a
                // real-time endpoint's variant (only inference components
                // scale to zero); a local endpoint keeps one replica too.
                if *min_instances < 1 || *min_instances > 100 {
                    let which = if *backend == Backend::SageMaker { "a SageMaker endpoint variant" } else { "a local endpoint" };
                    return Err(ApiError::Invalid(format!("min_instances must be from 1 to 100 for {which}, not {min_instances}")));
                }
            }
        }
        Ok(())
    }
}

/// A schedule as the form sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    pub action: ScheduleAction,
    /// "weekdays 19:00", "daily 07:30", "mon,wed,fri 18:00", "every 30m",
    /// "once 2026-12-24 18:00" (see [`Recurrence::parse`]).
    pub when: String,
    /// An IANA zone: "Europe/Berlin", "America/New_York", "UTC".
    pub time_zone: String,
}

impl ScheduleSpec {
    /// What can be checked without the time zone database (the server checks the zone).
    pub fn validate(&self) -> Result<Recurrence, ApiError> {
        self.action.validate()?;
        let zone = self.time_zone.trim();
        if zone.is_empty() || zone.len() > 64 || !zone.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c)) {
            return Err(ApiError::Invalid(format!("time_zone must be an IANA zone such as Europe/Berlin or UTC, not {:?}", self.time_zone)));
        }
        Recurrence::parse(&self.when)
    }
}

/// When a schedule runs, in the schedule's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recurrence {
    /// At `hour:minute` on each day marked (Monday first).
    Weekly { days: [bool; 7], hour: u8, minute: u8 },
    /// Every `minutes` minutes from the schedule's creation.
    Every { minutes: u32 },
    /// Once, at a wall-clock time: (year, month, day, hour, minute, second).
    Once { year: i16, month: u8, day: u8, hour: u8, minute: u8, second: u8 },
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Recurrence {
    /// Parses the `when` text; the error names the field and shows the forms.
    pub fn parse(text: &str) -> Result<Recurrence, ApiError> {
        let refuse = |why: &str| {
            ApiError::Invalid(format!(
                "when: {why} (write \"weekdays 19:00\", \"daily 07:30\", \"mon,wed,fri 18:00\", \"every 30m\" or \"once 2026-12-24 18:00\"), not {text:?}"
            ))
        };
        let lower = text.trim().to_lowercase();
        let mut words = lower.split_whitespace();
        let (Some(first), rest) = (words.next(), words.collect::<Vec<_>>()) else {
            return Err(refuse("it is empty"));
        };
        match first {
            "every" => {
                let [period] = rest.as_slice() else { return Err(refuse("\"every\" takes one period")) };
                let (number, unit) = period.split_at(period.find(|c: char| !c.is_ascii_digit()).unwrap_or(period.len()));
                let n: u32 = number.parse().map_err(|_| refuse("the period is not a number"))?;
                let minutes = match unit {
                    "m" | "min" => n,
                    "h" => n.saturating_mul(60),
                    _ => return Err(refuse("the period's unit is m or h")),
                };
                if !(1..=7 * 24 * 60).contains(&minutes) {
                    return Err(refuse("the period is from 1 minute to 7 days"));
                }
                Ok(Recurrence::Every { minutes })
            }
            "once" => {
                let [date, time] = rest.as_slice() else { return Err(refuse("\"once\" takes a date and a time")) };
                let parts: Vec<&str> = date.split('-').collect();
                let [y, m, d] = parts.as_slice() else { return Err(refuse("the date is YYYY-MM-DD")) };
                let (year, month, day) = (y.parse::<i16>(), m.parse::<u8>(), d.parse::<u8>());
                let (Ok(year), Ok(month), Ok(day)) = (year, month, day) else { return Err(refuse("the date is YYYY-MM-DD")) };
                if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
                    return Err(refuse("there is no such date"));
                }
                let (hour, minute, second) = parse_time(time).ok_or_else(|| refuse("the time is HH:MM or HH:MM:SS"))?;
                Ok(Recurrence::Once { year, month, day, hour, minute, second })
            }
            days_word => {
                let [time] = rest.as_slice() else { return Err(refuse("days take one time")) };
                let (hour, minute, second) = parse_time(time).ok_or_else(|| refuse("the time is HH:MM"))?;
                if second != 0 {
                    return Err(refuse("a recurring time is HH:MM"));
                }
                let days = parse_days(days_word).ok_or_else(|| refuse("the days are daily, weekdays, weekends or names like mon,wed,fri"))?;
                Ok(Recurrence::Weekly { days, hour, minute })
            }
        }
    }

    /// The schedule in words, as the panels show it.
    pub fn describe(&self) -> String {
        match self {
            Recurrence::Weekly { days, hour, minute } => {
                let which = match days {
                    [true, true, true, true, true, true, true] => "every day".to_string(),
                    [true, true, true, true, true, false, false] => "weekdays".to_string(),
                    [false, false, false, false, false, true, true] => "weekends".to_string(),
                    _ => DAYS.iter().zip(days).filter(|(_, on)| **on).map(|(d, _)| *d).collect::<Vec<_>>().join(","),
                };
                format!("{which} at {hour:02}:{minute:02}")
            }
            Recurrence::Every { minutes } if minutes % 60 == 0 => format!("every {} h", minutes / 60),
            Recurrence::Every { minutes } => format!("every {minutes} min"),
            Recurrence::Once { year, month, day, hour, minute, second } => {
                format!("once, {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}{}", if *second > 0 { format!(":{second:02}") } else { String::new() })
            }
        }
    }
}

fn parse_time(text: &str) -> Option<(u8, u8, u8)> {
    let parts: Vec<&str> = text.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m] => (h, m, &"0"),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    let (h, m, s) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?, s.parse::<u8>().ok()?);
    (h < 24 && m < 60 && s < 60 && parts[1].len() == 2).then_some((h, m, s))
}

fn parse_days(word: &str) -> Option<[bool; 7]> {
    match word {
        "daily" | "everyday" => return Some([true; 7]),
        "weekdays" => return Some([true, true, true, true, true, false, false]),
        "weekends" => return Some([false, false, false, false, false, true, true]),
        _ => {}
    }
    let mut days = [false; 7];
    for name in word.split(',') {
        let i = DAYS.iter().position(|d| name.starts_with(d) && name.len() <= 9)?;
        days[i] = true;
    }
    Some(days)
}

fn days_in_month(year: i16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// One schedule as the panels and the Costs page show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: i64,
    pub action: ScheduleAction,
    pub when: String,
    /// `when` in words.
    pub described: String,
    pub time_zone: String,
    /// RFC 3339, UTC; `None` once a one-off has run.
    pub next_run_at: Option<String>,
    /// The next run in the schedule's zone: "2026-12-02 19:00 CET".
    pub next_run_local: Option<String>,
    pub last_run_at: Option<String>,
    pub last_outcome: Option<String>,
    pub created_by: String,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ScheduleService: Send + Sync {
    /// Every schedule, or those acting on `resource` ("notebook/NAME", "sagemaker/NAME"…).
    async fn list(&self, resource: Option<String>) -> Result<Vec<Schedule>, ApiError>;
    async fn create(&self, spec: ScheduleSpec) -> Result<Schedule, ApiError>;
    async fn delete(&self, id: i64) -> Result<(), ApiError>;
}

#[cfg(feature = "ssr")]
pub type Schedules = std::sync::Arc<dyn ScheduleService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "schedules/list")]
pub async fn list_schedules(resource: Option<String>) -> Result<Vec<Schedule>, ApiError> {
    crate::error::service::<Schedules>()?.list(resource.filter(|r| !r.is_empty())).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "schedules/create", input = leptos::server_fn::codec::Json)]
pub async fn create_schedule(spec: ScheduleSpec) -> Result<Schedule, ApiError> {
    spec.validate()?;
    crate::error::service::<Schedules>()?.create(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "schedules/delete")]
pub async fn delete_schedule(id: i64) -> Result<(), ApiError> {
    crate::error::service::<Schedules>()?.delete(id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_when_forms_parse() {
        assert_eq!(
            Recurrence::parse("weekdays 19:00").unwrap(),
            Recurrence::Weekly { days: [true, true, true, true, true, false, false], hour: 19, minute: 0 }
        );
        assert_eq!(Recurrence::parse(" Daily 07:30 ").unwrap(), Recurrence::Weekly { days: [true; 7], hour: 7, minute: 30 });
        assert_eq!(
            Recurrence::parse("mon,wed,friday 18:05").unwrap(),
            Recurrence::Weekly { days: [true, false, true, false, true, false, false], hour: 18, minute: 5 }
        );
        assert_eq!(Recurrence::parse("every 30m").unwrap(), Recurrence::Every { minutes: 30 });
        assert_eq!(Recurrence::parse("every 2h").unwrap(), Recurrence::Every { minutes: 120 });
        assert_eq!(
            Recurrence::parse("once 2028-02-29 18:00:30").unwrap(),
            Recurrence::Once { year: 2028, month: 2, day: 29, hour: 18, minute: 0, second: 30 }
        );
    }

    #[test]
    fn bad_when_texts_are_refused_naming_the_field() {
        for bad in ["", "weekdays", "weekdays 25:00", "weekdays 7:5", "someday 10:00", "every", "every 0m", "every 5s", "every 9999h",
            "once 2027-02-29 10:00", "once 2027-13-01 10:00", "once tomorrow", "daily 10:00:30"]
        {
            let e = Recurrence::parse(bad).unwrap_err();
            assert!(matches!(e, ApiError::Invalid(_)) && e.message().starts_with("when:"), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn schedules_read_back_in_words() {
        assert_eq!(Recurrence::parse("weekdays 19:00").unwrap().describe(), "weekdays at 19:00");
        assert_eq!(Recurrence::parse("sat,sun 08:00").unwrap().describe(), "weekends at 08:00");
        assert_eq!(Recurrence::parse("tue,thu 09:15").unwrap().describe(), "tue,thu at 09:15");
        assert_eq!(Recurrence::parse("every 90m").unwrap().describe(), "every 90 min");
        assert_eq!(Recurrence::parse("every 3h").unwrap().describe(), "every 3 h");
    }

    #[test]
    fn specs_check_the_action_and_the_zone_name() {
        let spec = |action, zone: &str| ScheduleSpec { action, when: "weekdays 19:00".into(), time_zone: zone.into() };
        let stop = ScheduleAction::StopNotebook { name: "nb".into() };
        assert!(spec(stop.clone(), "Europe/Berlin").validate().is_ok());
        assert!(spec(stop.clone(), "Europe/Berlin; rm").validate().unwrap_err().message().contains("time_zone"));
        let negative = ScheduleAction::DeleteEndpointIfIdle { backend: Backend::SageMaker, name: "dogs".into(), idle_hours: 0 };
        assert!(spec(negative, "UTC").validate().unwrap_err().message().contains("idle_hours"));
        let zero = ScheduleAction::SetMinInstances { backend: Backend::SageMaker, name: "dogs".into(), min_instances: 0 };
        assert!(spec(zero, "UTC").validate().unwrap_err().message().contains("min_instances"));
        assert_eq!(stop.resource(), "notebook/nb");
    }
}
