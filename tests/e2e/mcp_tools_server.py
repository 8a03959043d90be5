"""A stdio MCP server with ~100 realistic tools, for the Claude Code tool search end-to-end test.

Contract: JSON-RPC 2.0, one message per line on stdin/stdout (MCP's stdio transport,
modelcontextprotocol.io/specification/2025-06-18/basic/transports). It answers ``initialize``
(echoing the client's protocol version, capability ``tools``), ignores notifications
(``notifications/initialized`` …), answers ``tools/list`` with :data:`TOOLS` (one page, no
cursor) and ``tools/call``; ``ping`` and the empty ``resources/list`` / ``prompts/list`` are
answered too, anything else is ``-32601 Method not found``. Every tool call answers with a text
naming the tool and its arguments, except :data:`TOKEN_TOOL`, whose answer carries
:data:`TOKEN`, which the test looks for in what the model was sent and in Claude Code's answer.

The tools are generated deterministically (no randomness) from per-server tables modelled on
common MCP servers (GitHub issues/PRs, Jira, Postgres, filesystem, Slack, Linear, Sentry,
Kubernetes, Confluence, and an inventory system holding the token tool), so every run and the
recorded fixture cc-27 see the same names, descriptions and input schemas.

Why no SDK: the ``mcp`` package is not a dependency of this project (nor of its tests); the
four methods a client needs take ~40 lines. Run: ``python tests/e2e/mcp_tools_server.py``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

TOKEN_TOOL = "inventory_lookup_warehouse_bin"
TOKEN = "BIN-TOKEN-7F3A91-QX"

_S = {"type": "string"}
_I = {"type": "integer"}


def _p(kind: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {**kind, "description": description, **extra}


#: server -> (noun phrase of the system, [(tool, description, {arg: schema}, [required])])
_SERVERS: dict[str, list[tuple[str, str, dict[str, Any], list[str]]]] = {}

_REPO = {"owner": _p(_S, "Repository owner (user or organisation)"),
         "repo": _p(_S, "Repository name")}
_SERVERS["github"] = [
    ("create_issue", "Create a new issue in a GitHub repository",
     {**_REPO, "title": _p(_S, "Issue title"), "body": _p(_S, "Issue body (Markdown)"),
      "labels": {"type": "array", "items": _S, "description": "Labels to apply"}},
     ["owner", "repo", "title"]),
    ("get_issue", "Get the details of an issue in a GitHub repository",
     {**_REPO, "issue_number": _p(_I, "Issue number")}, ["owner", "repo", "issue_number"]),
    ("update_issue", "Update the title, body, state or labels of a GitHub issue",
     {**_REPO, "issue_number": _p(_I, "Issue number"),
      "state": _p(_S, "New state", enum=["open", "closed"])}, ["owner", "repo", "issue_number"]),
    ("list_issues", "List issues in a GitHub repository with filters",
     {**_REPO, "state": _p(_S, "Filter by state", enum=["open", "closed", "all"]),
      "labels": {"type": "array", "items": _S, "description": "Filter by labels"}},
     ["owner", "repo"]),
    ("add_issue_comment", "Add a comment to a GitHub issue or pull request",
     {**_REPO, "issue_number": _p(_I, "Issue number"), "body": _p(_S, "Comment text")},
     ["owner", "repo", "issue_number", "body"]),
    ("search_issues", "Search issues and pull requests across GitHub repositories",
     {"q": _p(_S, "GitHub search query syntax")}, ["q"]),
    ("create_pull_request", "Create a new pull request in a GitHub repository",
     {**_REPO, "title": _p(_S, "PR title"), "head": _p(_S, "Branch with the changes"),
      "base": _p(_S, "Branch to merge into"), "draft": {"type": "boolean"}},
     ["owner", "repo", "title", "head", "base"]),
    ("get_pull_request", "Get the details of a pull request",
     {**_REPO, "pull_number": _p(_I, "Pull request number")}, ["owner", "repo", "pull_number"]),
    ("list_pull_requests", "List and filter pull requests of a repository",
     {**_REPO, "state": _p(_S, "Filter by state", enum=["open", "closed", "all"])},
     ["owner", "repo"]),
    ("merge_pull_request", "Merge a pull request",
     {**_REPO, "pull_number": _p(_I, "Pull request number"),
      "merge_method": _p(_S, "Merge method", enum=["merge", "squash", "rebase"])},
     ["owner", "repo", "pull_number"]),
    ("get_pull_request_files", "List the files changed in a pull request",
     {**_REPO, "pull_number": _p(_I, "Pull request number")}, ["owner", "repo", "pull_number"]),
    ("create_pull_request_review", "Review a pull request: approve, request changes or comment",
     {**_REPO, "pull_number": _p(_I, "Pull request number"), "body": _p(_S, "Review text"),
      "event": _p(_S, "Review action", enum=["APPROVE", "REQUEST_CHANGES", "COMMENT"])},
     ["owner", "repo", "pull_number", "event"]),
    ("get_file_contents", "Get the contents of a file or directory from a GitHub repository",
     {**_REPO, "path": _p(_S, "Path to the file"), "ref": _p(_S, "Branch, tag or commit")},
     ["owner", "repo", "path"]),
    ("create_branch", "Create a new branch in a GitHub repository",
     {**_REPO, "branch": _p(_S, "New branch name"), "from_branch": _p(_S, "Source branch")},
     ["owner", "repo", "branch"]),
    ("list_commits", "List the commits of a branch in a GitHub repository",
     {**_REPO, "sha": _p(_S, "Branch name or commit SHA")}, ["owner", "repo"]),
    ("search_code", "Search code across GitHub repositories",
     {"q": _p(_S, "Code search query")}, ["q"]),
]

_KEY = {"issue_key": _p(_S, "Jira issue key, e.g. PROJ-123")}
_SERVERS["jira"] = [
    ("get_issue", "Get a Jira issue with its fields and comments", _KEY, ["issue_key"]),
    ("search", "Search Jira issues with JQL",
     {"jql": _p(_S, "JQL query"), "limit": _p(_I, "Maximum results")}, ["jql"]),
    ("create_issue", "Create a Jira issue in a project",
     {"project_key": _p(_S, "Project key"), "summary": _p(_S, "Summary"),
      "issue_type": _p(_S, "Issue type, e.g. Bug, Task, Story"),
      "description": _p(_S, "Description")}, ["project_key", "summary", "issue_type"]),
    ("update_issue", "Update fields of a Jira issue",
     {**_KEY, "fields": {"type": "object", "description": "Fields to set"}},
     ["issue_key", "fields"]),
    ("transition_issue", "Move a Jira issue to another workflow status",
     {**_KEY, "transition_id": _p(_S, "Transition id")}, ["issue_key", "transition_id"]),
    ("add_comment", "Add a comment to a Jira issue",
     {**_KEY, "comment": _p(_S, "Comment text")}, ["issue_key", "comment"]),
    ("get_transitions", "List the workflow transitions available for a Jira issue", _KEY,
     ["issue_key"]),
    ("list_projects", "List the Jira projects the user can see", {}, []),
    ("get_sprint_issues", "List the issues of a Jira sprint",
     {"sprint_id": _p(_I, "Sprint id")}, ["sprint_id"]),
    ("list_sprints", "List the sprints of a Jira board",
     {"board_id": _p(_I, "Board id"), "state": _p(_S, "active, future or closed")},
     ["board_id"]),
    ("link_issues", "Link two Jira issues (blocks, relates to, duplicates)",
     {"inward_issue": _p(_S, "Inward issue key"), "outward_issue": _p(_S, "Outward issue key"),
      "link_type": _p(_S, "Link type name")}, ["inward_issue", "outward_issue", "link_type"]),
    ("log_work", "Log time spent on a Jira issue",
     {**_KEY, "time_spent": _p(_S, "e.g. 2h 30m")}, ["issue_key", "time_spent"]),
]

_SQL = {"sql": _p(_S, "SQL statement")}
_SERVERS["postgres"] = [
    ("query", "Run a read-only SQL query against the PostgreSQL database", _SQL, ["sql"]),
    ("execute", "Execute a SQL statement that modifies data (INSERT, UPDATE, DELETE)", _SQL,
     ["sql"]),
    ("list_schemas", "List the schemas of the PostgreSQL database", {}, []),
    ("list_tables", "List the tables of a PostgreSQL schema",
     {"schema": _p(_S, "Schema name")}, []),
    ("describe_table", "Describe the columns, types and constraints of a PostgreSQL table",
     {"schema": _p(_S, "Schema name"), "table": _p(_S, "Table name")}, ["table"]),
    ("explain_query", "Show the execution plan of a SQL query (EXPLAIN ANALYZE)",
     {**_SQL, "analyze": {"type": "boolean"}}, ["sql"]),
    ("list_indexes", "List the indexes of a PostgreSQL table",
     {"table": _p(_S, "Table name")}, ["table"]),
    ("get_table_stats", "Row counts, sizes and vacuum statistics of PostgreSQL tables",
     {"schema": _p(_S, "Schema name")}, []),
    ("list_active_queries", "List the running queries from pg_stat_activity", {}, []),
    ("analyze_db_health", "Check the database health: bloat, unused indexes, replication lag",
     {}, []),
    ("list_extensions", "List the installed PostgreSQL extensions", {}, []),
    ("top_queries", "The slowest queries by total time from pg_stat_statements",
     {"limit": _p(_I, "How many")}, []),
]

_PATH = {"path": _p(_S, "Path inside the allowed directories")}
_SERVERS["filesystem"] = [
    ("read_text_file", "Read the complete contents of a text file", _PATH, ["path"]),
    ("read_multiple_files", "Read several files at once",
     {"paths": {"type": "array", "items": _S, "description": "Paths"}}, ["paths"]),
    ("write_file", "Create a new file or overwrite an existing one",
     {**_PATH, "content": _p(_S, "File content")}, ["path", "content"]),
    ("edit_file", "Make line-based edits to a text file and return a git-style diff",
     {**_PATH, "edits": {"type": "array", "items": {"type": "object", "properties": {
         "oldText": _S, "newText": _S}}, "description": "Edits to apply"}}, ["path", "edits"]),
    ("create_directory", "Create a directory, with its parents", _PATH, ["path"]),
    ("list_directory", "List the files and directories in a path", _PATH, ["path"]),
    ("directory_tree", "A recursive JSON tree of files and directories", _PATH, ["path"]),
    ("move_file", "Move or rename a file or directory",
     {"source": _p(_S, "Source path"), "destination": _p(_S, "Destination path")},
     ["source", "destination"]),
    ("search_files", "Recursively search for files whose names match a pattern",
     {**_PATH, "pattern": _p(_S, "Glob pattern")}, ["path", "pattern"]),
    ("get_file_info", "Size, times and permissions of a file or directory", _PATH, ["path"]),
    ("list_allowed_directories", "List the directories this server may access", {}, []),
]

_CH = {"channel_id": _p(_S, "Slack channel id")}
_SERVERS["slack"] = [
    ("list_channels", "List the public channels of the Slack workspace",
     {"limit": _p(_I, "Maximum channels")}, []),
    ("post_message", "Post a new message to a Slack channel",
     {**_CH, "text": _p(_S, "Message text")}, ["channel_id", "text"]),
    ("reply_to_thread", "Reply to a message thread in Slack",
     {**_CH, "thread_ts": _p(_S, "Timestamp of the parent message"),
      "text": _p(_S, "Reply text")}, ["channel_id", "thread_ts", "text"]),
    ("add_reaction", "Add an emoji reaction to a Slack message",
     {**_CH, "timestamp": _p(_S, "Message timestamp"), "reaction": _p(_S, "Emoji name")},
     ["channel_id", "timestamp", "reaction"]),
    ("get_channel_history", "Get the recent messages of a Slack channel",
     {**_CH, "limit": _p(_I, "How many messages")}, ["channel_id"]),
    ("get_thread_replies", "Get all replies in a Slack message thread",
     {**_CH, "thread_ts": _p(_S, "Thread timestamp")}, ["channel_id", "thread_ts"]),
    ("get_users", "List the users of the Slack workspace with basic profile data", {}, []),
    ("get_user_profile", "Get the detailed profile of a Slack user",
     {"user_id": _p(_S, "Slack user id")}, ["user_id"]),
    ("search_messages", "Search Slack messages across channels",
     {"query": _p(_S, "Search terms")}, ["query"]),
    ("set_channel_topic", "Set the topic of a Slack channel",
     {**_CH, "topic": _p(_S, "New topic")}, ["channel_id", "topic"]),
]

_SERVERS["linear"] = [
    ("list_issues", "List Linear issues filtered by team, assignee or state",
     {"team": _p(_S, "Team key"), "assignee": _p(_S, "User")}, []),
    ("create_issue", "Create a Linear issue",
     {"team": _p(_S, "Team key"), "title": _p(_S, "Title"),
      "priority": _p(_I, "0 (none) to 4 (low)")}, ["team", "title"]),
    ("update_issue", "Update a Linear issue's state, assignee or priority",
     {"id": _p(_S, "Issue id"), "state": _p(_S, "Workflow state")}, ["id"]),
    ("get_issue", "Get a Linear issue with its comments", {"id": _p(_S, "Issue id")}, ["id"]),
    ("list_projects", "List the Linear projects", {}, []),
    ("list_cycles", "List the cycles of a Linear team", {"team": _p(_S, "Team key")},
     ["team"]),
    ("create_comment", "Comment on a Linear issue",
     {"issue_id": _p(_S, "Issue id"), "body": _p(_S, "Comment (Markdown)")},
     ["issue_id", "body"]),
    ("list_teams", "List the teams of the Linear workspace", {}, []),
]

_SERVERS["sentry"] = [
    ("list_issues", "List the unresolved Sentry issues of a project",
     {"project": _p(_S, "Project slug"), "query": _p(_S, "Sentry search")}, ["project"]),
    ("get_issue_details", "Get a Sentry issue with its latest event and stack trace",
     {"issue_id": _p(_S, "Sentry issue id")}, ["issue_id"]),
    ("resolve_issue", "Mark a Sentry issue as resolved",
     {"issue_id": _p(_S, "Sentry issue id")}, ["issue_id"]),
    ("list_releases", "List the releases of a Sentry project",
     {"project": _p(_S, "Project slug")}, ["project"]),
    ("get_event", "Get one Sentry event by id",
     {"project": _p(_S, "Project slug"), "event_id": _p(_S, "Event id")},
     ["project", "event_id"]),
    ("search_errors", "Search errors across Sentry projects by message or tag",
     {"query": _p(_S, "Search terms")}, ["query"]),
]

_NS = {"namespace": _p(_S, "Kubernetes namespace")}
_SERVERS["kubernetes"] = [
    ("list_pods", "List the pods in a Kubernetes namespace", _NS, []),
    ("get_pod_logs", "Get the logs of a pod's container",
     {**_NS, "pod": _p(_S, "Pod name"), "tail": _p(_I, "Lines from the end")}, ["pod"]),
    ("describe_resource", "Describe a Kubernetes resource (kubectl describe)",
     {**_NS, "kind": _p(_S, "Resource kind"), "name": _p(_S, "Resource name")},
     ["kind", "name"]),
    ("apply_manifest", "Apply a YAML manifest to the cluster",
     {"manifest": _p(_S, "YAML manifest")}, ["manifest"]),
    ("delete_resource", "Delete a Kubernetes resource",
     {**_NS, "kind": _p(_S, "Resource kind"), "name": _p(_S, "Resource name")},
     ["kind", "name"]),
    ("scale_deployment", "Scale a deployment to a number of replicas",
     {**_NS, "name": _p(_S, "Deployment"), "replicas": _p(_I, "Replicas")},
     ["name", "replicas"]),
    ("rollout_restart", "Restart a deployment's pods (kubectl rollout restart)",
     {**_NS, "name": _p(_S, "Deployment")}, ["name"]),
    ("list_events", "List the recent events of a namespace", _NS, []),
    ("port_forward", "Forward a local port to a pod",
     {**_NS, "pod": _p(_S, "Pod"), "port": _p(_I, "Port")}, ["pod", "port"]),
    ("list_deployments", "List the deployments of a namespace", _NS, []),
    ("get_node_status", "Conditions, capacity and allocations of the cluster nodes", {}, []),
    ("list_services", "List the services of a namespace", _NS, []),
]

_SERVERS["confluence"] = [
    ("search", "Search Confluence pages with CQL", {"cql": _p(_S, "CQL query")}, ["cql"]),
    ("get_page", "Get a Confluence page's content by id", {"page_id": _p(_S, "Page id")},
     ["page_id"]),
    ("create_page", "Create a Confluence page in a space",
     {"space_key": _p(_S, "Space key"), "title": _p(_S, "Title"),
      "body": _p(_S, "Content (storage format)")}, ["space_key", "title", "body"]),
    ("update_page", "Update the content of a Confluence page",
     {"page_id": _p(_S, "Page id"), "body": _p(_S, "New content")}, ["page_id", "body"]),
    ("list_spaces", "List the Confluence spaces", {}, []),
    ("get_page_children", "List the child pages of a Confluence page",
     {"page_id": _p(_S, "Page id")}, ["page_id"]),
    ("add_label", "Add a label to a Confluence page",
     {"page_id": _p(_S, "Page id"), "label": _p(_S, "Label")}, ["page_id", "label"]),
]

_SERVERS["inventory"] = [
    ("lookup_warehouse_bin", "Look up which warehouse bin holds a part number and return the "
     "bin's access token", {"part_number": _p(_S, "Part number, e.g. PN-1042")},
     ["part_number"]),
    ("list_stock_levels", "Stock levels of the parts in a warehouse",
     {"warehouse": _p(_S, "Warehouse code")}, ["warehouse"]),
    ("reserve_parts", "Reserve a quantity of a part for an order",
     {"part_number": _p(_S, "Part number"), "quantity": _p(_I, "Quantity"),
      "order_id": _p(_S, "Order id")}, ["part_number", "quantity", "order_id"]),
    ("create_purchase_order", "Create a purchase order for a supplier",
     {"supplier": _p(_S, "Supplier id"), "lines": {"type": "array", "items": {
         "type": "object"}, "description": "Order lines"}}, ["supplier", "lines"]),
    ("get_shipment_status", "Tracking status of an outbound shipment",
     {"shipment_id": _p(_S, "Shipment id")}, ["shipment_id"]),
    ("list_suppliers", "List the approved suppliers", {}, []),
]


def _tools() -> list[dict[str, Any]]:
    out = []
    for server, entries in _SERVERS.items():
        for name, description, props, required in entries:
            schema: dict[str, Any] = {"type": "object", "properties": props}
            if required:
                schema["required"] = required
            out.append({"name": f"{server}_{name}", "description": description,
                        "inputSchema": schema})
    return out


TOOLS = _tools()
_NAMES = {t["name"] for t in TOOLS}


def _answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        return {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "e2e-tools", "version": "1.0.0"}}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method in ("resources/list", "prompts/list", "resources/templates/list"):
        return {method.split("/")[0].replace("templates", "resourceTemplates"): []}
    if method == "tools/call":
        name, args = params.get("name"), params.get("arguments") or {}
        if name not in _NAMES:
            return {"content": [{"type": "text", "text": f"unknown tool {name}"}],
                    "isError": True}
        text = (f"Part {args.get('part_number', '?')} is in bin B-17; access token: {TOKEN}"
                if name == TOKEN_TOOL else f"{name} ran with {json.dumps(args)}")
        return {"content": [{"type": "text", "text": text}], "isError": False}
    raise LookupError(method)


def main() -> None:
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict) or "id" not in msg:
            continue  # a notification (notifications/initialized, cancelled, ...)
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"]}
        try:
            reply["result"] = _answer(str(msg.get("method")), msg.get("params") or {})
        except LookupError:
            reply["error"] = {"code": -32601, "message": f"Method not found: {msg.get('method')}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
