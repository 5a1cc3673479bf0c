from enum import StrEnum

class JobKind(StrEnum):
    CASHFLOW_PROJECT = "cashflow.project"

    def __str__(self) -> str:
        return str(self.value)
