""" Contains all the data models used in inputs/outputs """

from .accepted import Accepted
from .account import Account
from .add_jobs import AddJobs
from .batch_item import BatchItem
from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .batch_status import BatchStatus
from .callback_request import CallbackRequest
from .callback_request_payload import CallbackRequestPayload
from .callback_status import CallbackStatus
from .cashflow_project_payload import CashflowProjectPayload
from .channel import Channel
from .create_batch import CreateBatch
from .created import Created
from .day import Day
from .day_item import DayItem
from .dedupe_request import DedupeRequest
from .email_request import EmailRequest
from .email_request_template import EmailRequestTemplate
from .email_request_vars_type_0 import EmailRequestVarsType0
from .email_status import EmailStatus
from .enqueue_request import EnqueueRequest
from .enqueue_request_payload import EnqueueRequestPayload
from .error_body import ErrorBody
from .error_detail import ErrorDetail
from .finance import Finance
from .item_result_type_0 import ItemResultType0
from .item_result_type_1 import ItemResultType1
from .job_kind import JobKind
from .job_progress import JobProgress
from .job_status import JobStatus
from .key import Key
from .keys import Keys
from .live import Live
from .new_webhook import NewWebhook
from .paused_state import PausedState
from .profile import Profile
from .projection import Projection
from .projections import Projections
from .queued import Queued
from .readiness import Readiness
from .recurring_item import RecurringItem
from .refresh_request import RefreshRequest
from .refreshing import Refreshing
from .reminder import Reminder
from .reminder_body import ReminderBody
from .reminders import Reminders
from .rotated import Rotated
from .rotated_secret import RotatedSecret
from .schedule_view import ScheduleView
from .scheduled import Scheduled
from .schedules import Schedules
from .shortfall import Shortfall
from .stored import Stored
from .stored_projection import StoredProjection
from .tick import Tick
from .webhook import Webhook
from .webhook_body import WebhookBody
from .webhooks import Webhooks

__all__ = (
    "Accepted",
    "Account",
    "AddJobs",
    "BatchItem",
    "BatchRequest",
    "BatchResponse",
    "BatchStatus",
    "CallbackRequest",
    "CallbackRequestPayload",
    "CallbackStatus",
    "CashflowProjectPayload",
    "Channel",
    "CreateBatch",
    "Created",
    "Day",
    "DayItem",
    "DedupeRequest",
    "EmailRequest",
    "EmailRequestTemplate",
    "EmailRequestVarsType0",
    "EmailStatus",
    "EnqueueRequest",
    "EnqueueRequestPayload",
    "ErrorBody",
    "ErrorDetail",
    "Finance",
    "ItemResultType0",
    "ItemResultType1",
    "JobKind",
    "JobProgress",
    "JobStatus",
    "Key",
    "Keys",
    "Live",
    "NewWebhook",
    "PausedState",
    "Profile",
    "Projection",
    "Projections",
    "Queued",
    "Readiness",
    "RecurringItem",
    "Refreshing",
    "RefreshRequest",
    "Reminder",
    "ReminderBody",
    "Reminders",
    "Rotated",
    "RotatedSecret",
    "Scheduled",
    "Schedules",
    "ScheduleView",
    "Shortfall",
    "Stored",
    "StoredProjection",
    "Tick",
    "Webhook",
    "WebhookBody",
    "Webhooks",
)
