"""`LibraryCardDelegate`: paints one library item as a card: picture, title, badges, trigger.

Painting never waits for a picture: a card whose thumbnail is not in memory asks the
`ThumbnailLoader` for it (decoded off the GUI thread) and paints a placeholder with the item's
kind until the thumbnail arrives; then only that card is repainted. Thumbnails are kept as
pixmaps in a bounded most-recently-used cache, so scrolling through 20,000 cards holds a few
hundred pictures in memory, not 20,000.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from craftstudio.state.library_model import KIND_LABELS, ItemRole, family_label
from craftstudio.workers.thumbnail_loader import Thumbnail, ThumbnailLoader

CARD = QSize(176, 236)
PICTURE = 150  # the picture's height inside the card
MARGIN = 6
# The picture's box inside a card; thumbnails are cut to it once, so a paint is a plain copy.
PICTURE_BOX = QSize(CARD.width() - MARGIN - 2 * MARGIN, PICTURE - MARGIN)
RADIUS = 8
CACHE_PIXMAPS = 400
FAMILY_COLOURS = {"sd1": QColor("#3b7dd8"), "sd2": QColor("#2a9d8f"), "sdxl": QColor("#8e5bd6")}
ROLE_COLOURS = {"content": QColor("#d9822b"), "style": QColor("#c2458a")}
NEUTRAL = QColor("#6b7280")


def thumbnail_key(item_id: str, preview: str) -> str:
    return f"{item_id}|{preview}"


class LibraryCardDelegate(QStyledItemDelegate):
    def __init__(self, view: QAbstractItemView, loader: ThumbnailLoader) -> None:
        super().__init__(view)
        self._view = view
        self._loader = loader
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self.painted = 0  # cards painted (the benchmark counts them)
        self.placeholders = 0  # cards painted before their picture had arrived
        loader.ready.connect(self._on_ready)
        loader.failed.connect(self._failed.add)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return CARD

    def pixmap(self, item_id: str, preview: str | None) -> QPixmap | None:
        """The cached thumbnail, or None (a decode is requested; never waited for)."""
        if not preview:
            return None
        key = thumbnail_key(item_id, preview)
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
            return pixmap
        if key not in self._failed:
            self._loader.request(key, preview)
        return None

    def _on_ready(self, key: str, thumbnail: Thumbnail) -> None:
        image = QImage(thumbnail.rgb, thumbnail.width, thumbnail.height, thumbnail.width * 3,
                       QImage.Format.Format_RGB888)
        self._pixmaps[key] = _card_picture(image)
        while len(self._pixmaps) > CACHE_PIXMAPS:
            self._pixmaps.popitem(last=False)
        self._view.viewport().update()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        item = index.data(ItemRole)
        if item is None:
            return
        self.painted += 1
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        card = option.rect.adjusted(MARGIN // 2, MARGIN // 2, -MARGIN // 2, -MARGIN // 2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        shape = QPainterPath()
        shape.addRoundedRect(card, RADIUS, RADIUS)
        painter.fillPath(shape, palette.color(QPalette.ColorRole.AlternateBase))
        border = palette.color(QPalette.ColorRole.Highlight) if selected else \
            palette.color(QPalette.ColorRole.Mid).lighter(130 if hovered else 100)
        painter.setPen(QPen(border, 3 if selected else 1))
        painter.drawPath(shape)

        picture = QRect(card.left() + MARGIN, card.top() + MARGIN, card.width() - 2 * MARGIN, PICTURE - MARGIN)
        self._paint_picture(painter, picture, item, palette)
        self._paint_badges(painter, picture, item)

        text_left = card.left() + MARGIN + 2
        text_width = card.width() - 2 * MARGIN - 4
        y = picture.bottom() + 6
        title_font = QFont(option.font)
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        metrics = QFontMetrics(title_font)
        title = metrics.elidedText(item.label, Qt.TextElideMode.ElideRight, text_width)
        painter.drawText(QRect(text_left, y, text_width, metrics.height()), Qt.AlignmentFlag.AlignLeft, title)
        y += metrics.height() + 2
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() - 1))
        painter.setFont(small)
        metrics = QFontMetrics(small)
        kind = KIND_LABELS.get(item.kind, item.kind)
        role = f" · {item.role}" if item.kind == "lora" and item.role != "other" else ""
        rank = f" · rank {item.rank}" if item.rank else ""
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(text_left, y, text_width, metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         metrics.elidedText(kind + role + rank, Qt.TextElideMode.ElideRight, text_width))
        y += metrics.height() + 1
        trigger = ", ".join(item.triggers) if item.triggers else "no trigger phrase"
        painter.setPen(palette.color(QPalette.ColorRole.Text) if item.triggers
                       else palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(text_left, y, text_width, metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         metrics.elidedText(trigger, Qt.TextElideMode.ElideRight, text_width))
        if item.missing:
            painter.setPen(QColor("#e5484d"))
            painter.drawText(picture.adjusted(4, 4, -4, -4), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
                             "file missing")
        painter.restore()

    def _paint_picture(self, painter: QPainter, rect: QRect, item, palette: QPalette) -> None:
        pixmap = self.pixmap(item.id, item.preview)
        if pixmap is not None and not pixmap.isNull():
            painter.drawPixmap(rect.topLeft(), pixmap)  # already cut to the box, rounded: a copy
            return
        painter.save()
        shape = QPainterPath()
        shape.addRoundedRect(rect, RADIUS - 2, RADIUS - 2)
        painter.fillPath(shape, palette.color(QPalette.ColorRole.Base))
        if item.preview:
            self.placeholders += 1
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        font = QFont(painter.font())
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        painter.setFont(font)
        initials = {"lora": "LoRA", "model": "Model", "backbone": "W₀"}.get(item.kind, "?")
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, initials)
        painter.restore()

    def _paint_badges(self, painter: QPainter, rect: QRect, item) -> None:
        font = QFont(painter.font())
        font.setBold(True)
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        painter.setFont(font)
        metrics = QFontMetrics(font)
        x = rect.left() + 5
        badges = [(family_label(item.family), FAMILY_COLOURS.get(item.family, NEUTRAL))]
        if item.kind == "lora" and item.role in ROLE_COLOURS:
            badges.append((item.role, ROLE_COLOURS[item.role]))
        for text, colour in badges:
            width = metrics.horizontalAdvance(text) + 10
            badge = QRect(x, rect.top() + 5, width, metrics.height() + 2)
            path = QPainterPath()
            path.addRoundedRect(badge, 4, 4)
            painter.fillPath(path, colour)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
            x += width + 4


def _card_picture(image: QImage) -> QPixmap:
    """`image` scaled to fill the picture box (centre cut), with rounded corners, once."""
    box = PICTURE_BOX
    scaled = image.scaled(box, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                          Qt.TransformationMode.SmoothTransformation)
    source = QRect(0, 0, box.width(), box.height())
    source.moveCenter(scaled.rect().center())
    out = QPixmap(box)
    out.fill(Qt.GlobalColor.transparent)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    clip = QPainterPath()
    clip.addRoundedRect(QRect(0, 0, box.width(), box.height()), RADIUS - 2, RADIUS - 2)
    painter.setClipPath(clip)
    painter.drawImage(QRect(0, 0, box.width(), box.height()), scaled, source)
    painter.end()
    return out
