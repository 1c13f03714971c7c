"""The SQL screen's schema browser: every table and view, its columns with their types and docs.

Built from a ``Catalog`` (read on a thread worker). Each node carries the text a pick
inserts into the query: a table's name, or a column's. The comment under a name is the
one schema.sql gives it (``COMMENT ON`` for tables and views, ``--`` for columns).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree

from xling_tui.sql_completion import Catalog


class SchemaTree(Tree[str]):
    BINDINGS = [Binding("enter", "pick", "insert name", show=False)]

    @dataclass
    class Picked(Message):
        """A table or column name to insert at the query's cursor."""

        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("results", id=id)
        self.show_root = False
        self.guide_depth = 2

    def show(self, catalog: Catalog) -> None:
        """Rebuilds the tree; tables first, then views (each documented in a dim line)."""
        self.clear()
        for kind, title in (("table", "tables"), ("view", "views")):
            relations = [r for r in catalog.relations if r.kind == kind]
            if not relations:
                continue
            group = self.root.add(Text(title, style="bold"), expand=True)
            for rel in relations:
                label = Text(rel.name, style="bold")
                node = group.add(label, data=rel.name)
                if rel.comment:
                    node.add_leaf(Text(rel.comment, style="dim italic"), data=rel.name)
                for name, dtype, doc in rel.columns:
                    text = Text.assemble(name, " ", (dtype.lower(), "cyan"))
                    if doc:
                        text.append(f"  {doc}", style="dim")
                    node.add_leaf(text, data=name)

    def action_pick(self) -> None:
        """enter on a name inserts it (groups and tables still open and close with space)."""
        node = self.cursor_node
        if node is not None and node.data:
            self.post_message(self.Picked(node.data))
        elif node is not None:
            node.toggle()
