from enum import StrEnum

class EmailRequestTemplate(StrEnum):
    BACKUP_FAILED = "backup_failed"
    BILL_REMINDER = "bill_reminder"
    LOW_BALANCE = "low_balance"
    PASSWORD_RESET = "password_reset"
    WEEKLY_SUMMARY = "weekly_summary"

    def __str__(self) -> str:
        return str(self.value)
