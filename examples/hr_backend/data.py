"""The example's org chart and review records (fictional people, one review cycle)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Employee:
    """One person in the org chart; ``subject`` is their identity-provider subject."""

    id: str
    name: str
    title: str
    department: str
    manager_id: str | None
    subject: str


@dataclass(frozen=True, slots=True)
class Review:
    """One performance review."""

    employee_id: str
    cycle: str
    rating: str
    reviewer_id: str | None
    feedback: str


EMPLOYEES: tuple[Employee, ...] = (
    Employee("e-100", "Morgan Lee", "Chief Executive", "Executive", None, "morgan.lee"),
    Employee("e-101", "Priya Natarajan", "VP Engineering", "Engineering", "e-100", "priya.natarajan"),
    Employee("e-102", "Sam Okafor", "Engineering Manager", "Engineering", "e-101", "sam.okafor"),
    Employee("e-103", "Lena Fischer", "Senior Engineer", "Engineering", "e-102", "lena.fischer"),
    Employee("e-104", "Tomas Ruiz", "Engineer", "Engineering", "e-102", "tomas.ruiz"),
    Employee("e-105", "Aiko Tanaka", "Staff Engineer", "Engineering", "e-101", "aiko.tanaka"),
    Employee("e-106", "Grace Mensah", "Sales Director", "Sales", "e-100", "grace.mensah"),
    Employee("e-107", "Omar Haddad", "Account Executive", "Sales", "e-106", "omar.haddad"),
    Employee("e-108", "Julia Novak", "Account Executive", "Sales", "e-106", "julia.novak"),
    Employee("e-109", "Chris Byrne", "Head of People", "People", "e-100", "chris.byrne"),
    Employee("e-110", "Nadia Petrova", "People Partner", "People", "e-109", "nadia.petrova"),
    Employee("e-111", "Ben Carter", "Controller", "Finance", "e-100", "ben.carter"),
)

_FEEDBACK = {
    "e-100": ("meets", "Set a clear strategy; board communication could be more frequent."),
    "e-101": ("exceeds", "Grew the platform team and cut incident count in half."),
    "e-102": ("meets", "Reliable delivery; should delegate design reviews more."),
    "e-103": ("exceeds", "Led the storage migration with no downtime."),
    "e-104": ("developing", "Strong debugging; needs to scope tasks before starting."),
    "e-105": ("exceeds", "Mentored four engineers and wrote the testing guide."),
    "e-106": ("meets", "Hit the regional target; pipeline reviews started late."),
    "e-107": ("exceeds", "Closed the largest renewal of the year."),
    "e-108": ("meets", "Good discovery calls; forecasting accuracy to improve."),
    "e-109": ("meets", "Rolled out the new review process on time."),
    "e-110": ("exceeds", "Resolved every escalation within a week."),
    "e-111": ("meets", "Closed the books two days faster each quarter."),
}


class OrgChart:
    """Employees, who reports to whom, and their reviews."""

    def __init__(self, employees: tuple[Employee, ...] = EMPLOYEES) -> None:
        self.by_id = {e.id: e for e in employees}
        self.by_subject = {e.subject: e for e in employees}
        self._reports: dict[str, list[str]] = {}
        for e in employees:
            if e.manager_id is not None:
                self._reports.setdefault(e.manager_id, []).append(e.id)
        self.reviews = {
            e.id: Review(e.id, "2026-H1", rating, e.manager_id, text)
            for e in employees
            for rating, text in [_FEEDBACK.get(e.id, ("meets", ""))]
        }

    def direct_reports(self, manager_id: str) -> list[str]:
        """Ids of the people who report to ``manager_id`` directly."""
        return list(self._reports.get(manager_id, []))

    def all_reports(self, manager_id: str) -> list[str]:
        """Ids of everyone under ``manager_id``, at any depth, breadth first."""
        return list(self._walk(manager_id))

    def _walk(self, manager_id: str) -> Iterator[str]:
        queue = self.direct_reports(manager_id)
        seen: set[str] = set()
        while queue:
            eid = queue.pop(0)
            if eid in seen:
                continue  # a cycle in bad data must not loop forever
            seen.add(eid)
            yield eid
            queue.extend(self.direct_reports(eid))
