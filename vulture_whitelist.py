"""Names vulture takes for dead code that are in use: frameworks call them, or they are
declarations read by name (table columns, response fields), or tests rely on them.

`vulture` (configured in pyproject.toml) reads this file beside localrepo/ and counts
each name below as used. Never executed: it only has to parse. Add a name here only
with the reason it is not dead; remove code that is.
"""

# ruff: noqa: B018  (the bare expressions are the point: each one "uses" a name)

import sqlite3

from localrepo import remote
from localrepo.catalog import db as catalog_db
from localrepo.catalog import migrate, models
from localrepo.cli import daemon_cmds, main, remote_cmds, sync_cmds
from localrepo.remote import models as remote_models
from localrepo.remote.client import RecognitionClient
from localrepo.scan import walk
from localrepo.server import app, cli_examples, errors, schemas
from localrepo.server.api import account as api_account
from localrepo.server.api import annotate as api_annotate
from localrepo.server.api import changes as api_changes
from localrepo.server.api import health as api_health
from localrepo.server.api import images as api_images
from localrepo.server.api import labels as api_labels
from localrepo.server.api import tasks as api_tasks
from localrepo.server.data import db as server_db
from localrepo.server.data import imageseed, tables
from localrepo.server.web import account as web_account
from localrepo.server.web import assets as web_assets
from localrepo.server.web import docs as web_docs
from localrepo.server.web import evaluation as web_evaluation
from localrepo.server.web import evalview, trainview
from localrepo.server.web import images as web_images
from localrepo.server.web import pages as web_pages
from localrepo.server.web import tasks as web_tasks
from localrepo.server.web import training as web_training
from localrepo.sync import plan, report
from localrepo.watch import observer

# -- click: commands registered by their decorators (@cli.command, @group.command) ---------
main.init
main.task_add
main.task_rename
main.task_remove
main.task_list
main.check_ignore
sync_cmds.push
sync_cmds.pull
sync_cmds.clone
remote_cmds.login
remote_cmds.remote_set
remote_cmds.remote_show
daemon_cmds.watch
daemon_cmds.daemon_start
daemon_cmds.daemon_stop
daemon_cmds.daemon_status
daemon_cmds.daemon_logs

# -- FastAPI: routes registered by their decorators (@router.get, .put, .patch, ...) -------
api_account.user_details
api_account.account_details
api_annotate.list_verifications
api_annotate.list_points
api_labels.label_add_task
api_labels.label_remove_task
api_health.healthz
api_health.readyz
api_images.list_images
api_changes.image_changes
api_images.put_image
api_images.patch_image
api_images.image_add_label
api_images.image_remove_label
api_images.image_update_value
api_images.image_update_label
api_labels.put_label
api_labels.patch_label
api_tasks.list_tasks
api_tasks.put_task
api_tasks.patch_task
api_tasks.task_add_label
api_tasks.task_remove_label
web_assets.static_file
web_docs.swagger_ui
web_docs.swagger_ui_redirect
web_docs.redoc
web_docs.favicon
web_pages.root
web_pages.web_root
web_pages.home
web_pages.sign_in_form
web_pages.sign_in
web_pages.sign_out
web_account.account_page
web_account.create_token
web_account.revoke_token
web_images.gallery
web_images.upload
web_images.bulk
web_images.thumbnail
web_images.full_image
web_images.image_page
web_tasks.my_tasks
web_tasks.task_list
web_tasks.create_task
web_tasks.task_page
web_tasks.rename_task
web_tasks.delete_form
web_tasks.delete_task
web_tasks.create_label
web_tasks.attach_label
web_tasks.rename_label
web_tasks.detach_form
web_tasks.detach_label
web_training.training_page
web_training.training_status
web_evaluation.evaluation_page
web_evaluation.try_it
# read by the templates (training_panel.html)
trainview.JobStatus.active
trainview.VersionRow.can_promote
evalview.Cell.diagonal
evalview.LabelRow.figures
evalview.Guess.share
evalview.EvalView.matrix_labels
evalview.Shot.deciding  # evaluation.html: the multi_label tag whose score is shown
# exception handlers registered by @app.exception_handler in install_handlers
errors._api_error
errors._too_large
errors._http_error
errors._validation
errors._crash
# Starlette reads the router's flag when it routes a request
app.FastAPI.router.redirect_slashes

# -- pydantic: configuration and response fields, read by pydantic and serialised ----------
schemas.BaseModel.model_config
schemas.ClassifyOut.statistics
schemas.ImageOut.thumb_img_path
schemas.ImageOut.img_width
schemas.ImageOut.img_height
schemas.ImageOut.verifyCount
schemas.Page.previous
schemas.UserOut.first_name
schemas.LabelDetailOut.recognition_tasks
schemas.LabelOut.objects_count
schemas.UserOut.last_name
schemas.UserOut.date_joined

# -- SQLAlchemy / SQLModel ----------------------------------------------------------------
# event listeners registered by @event.listens_for (catalog and server connections)
catalog_db.make_engine  # Alembic's engine: migrations/env.py (outside the scanned paths)
catalog_db.make_engine._on_connect  # nested in make_engine
catalog_db.make_engine._on_begin
server_db.Database._on_connect  # nested in Database.__init__
server_db.Database._on_begin
sqlite3.Connection.isolation_level  # set on the DBAPI connection by those listeners
# Catalog tables: declared for Alembic (migrations/env.py imports models for its
# metadata) and the schema test; the client reads and writes them with plain SQL.
models.RepoMeta
models.File
models.File.cached_ns
models.File.damaged_image_id
models.AuxFile
models.AuxFile.content_hash
models.JournalEntry
models.JournalEntry.finished_ns
models.Conflict.resolved_ns
models.ScanProblem
models.RemoteListing
models.RemoteFeed
models.WriteEpoch
models.QuietMark
models.LabelWatch
models.LabelDirty
# Server tables and columns: created from this metadata, read and written with SQL text
tables.Image.upload_sha256
tables.RateBucket
tables.RateBucket.full_at
tables.Image.size_bytes
tables.Image.img_width
tables.Image.img_height
tables.TrainedModel
tables.ModelHead
tables.Embedding
tables.TrainingJob
tables.ImageEvent
tables.ImageEvent.label_name
tables.ImageChange
tables.ImageChange.seq
tables.ChangeCounter
tables.ChangeCounter.seq
# tests/test_catalog.py checks that schema.KNOWN_REVISIONS are the shipped scripts
migrate.script_revisions

# -- the remote client: documented API (docs/remote.md) with tests, no caller yet ----------
RecognitionClient.list_tasks
RecognitionClient.list_images
remote_models.RemoteImageLabel.value_invalid
remote_models.RemoteImage.thumb_img_path
remote_models.ClassifiedRecord.stored_image_id

# -- the server's bulk seeding: called by benchmarks/million.py --sync and its test ---------
imageseed.seed_images

# -- Python and libraries calling by name ---------------------------------------------------
remote.__getattr__  # a module __getattr__ (PEP 562): the package's lazy imports
observer._Handler.dispatch  # watchdog calls its event handler's dispatch()
cli_examples.argparse.ArgumentParser.formatter_class  # argparse reads it when it prints help
walk.CTIME  # names the fifth field of a Stat tuple, with DEV, INODE, SIZE, MTIME

# -- read by the tests as their oracle ------------------------------------------------------
report.TaskReport.from_feed  # the change-feed tests' "the feed told the remote"
report.SyncReport.in_sync  # the simulation's and the sync tests' "in sync" (reliability.md)
plan.Plan.is_empty  # the planner tests' "nothing to do"
