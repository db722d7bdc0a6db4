-- cop's pandoc filter for draft exports (cop/drafts/exports.py): whatever a writer typed
-- stays inert in DOCX and ODT, whatever pandoc's reader made of it.
--
-- * Links keep their target only for http(s) and mailto addresses and the document's own
--   anchors; any other target (javascript:, data:, file:, relative paths) leaves the text.
-- * Images are never fetched nor embedded: an image becomes its description, linked to its
--   address when that address is http(s). (pandoc also runs with --sandbox.)
-- * Raw blocks and raw inlines (none are expected: the reader's raw extensions are off)
--   become their literal text.
-- * Headings inside block quotes (experience sheets are block quotes) become bold
--   paragraphs, so that the boxed "Block Text" / "Quotations" style runs unbroken.

local function is_safe(target)
  local lowered = target:lower()
  return lowered:match("^https?://") ~= nil
    or lowered:match("^mailto:") ~= nil
    or lowered:match("^#[%w_.:-]*$") ~= nil
end

function Link(link)
  if is_safe(link.target) then
    link.attr = pandoc.Attr()
    return link
  end
  return link.content
end

function Image(image)
  local target = image.src:lower()
  if target:match("^https?://") then
    return pandoc.Link(image.caption, image.src)
  end
  return image.caption
end

function RawInline(raw)
  return pandoc.Str(raw.text)
end

function RawBlock(raw)
  return pandoc.CodeBlock(raw.text)
end

function BlockQuote(quote)
  return quote:walk({
    Header = function(header)
      return pandoc.Para({ pandoc.Strong(header.content) })
    end,
  })
end
