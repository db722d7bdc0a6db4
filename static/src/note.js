// The live note page: a CodeMirror 6 markdown editor bound to the note's Yjs text, which the
// unmodified y-socket.io provider syncs with the server (DESIGN.md, "Live co-editing").
// Settings and every sentence shown come from the template's data attributes (translated
// there); the page without this script shows the saved text.

import * as Y from "yjs";
import { SocketIOProvider } from "y-socket.io";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import { Compartment, EditorState, Prec } from "@codemirror/state";
import {
  Decoration,
  EditorView,
  MatchDecorator,
  ViewPlugin,
  drawSelection,
  highlightSpecialChars,
  keymap,
} from "@codemirror/view";
import { defaultKeymap } from "@codemirror/commands";
import { HighlightStyle, LanguageSupport, syntaxHighlighting } from "@codemirror/language";
import { markdownKeymap, markdownLanguage, pasteURLAsLink } from "@codemirror/lang-markdown";
import { tags } from "@lezer/highlight";

const TEXT_NAME = "markdown"; // cop/notes/services.py TEXT_NAME
const PREVIEW_DELAY = 600; // ms of quiet typing before the open preview refreshes
const REVEAL_LIMIT = 2000; // ms after the first sync before the editor shows, text or not

// Colours of cop.css: ink #1d232b, muted #4f5964 and accent #0b5cad all pass WCAG AA on white.
const highlightStyle = HighlightStyle.define([
  { tag: tags.heading, fontWeight: "700" },
  { tag: tags.heading1, fontSize: "1.25em" },
  { tag: tags.heading2, fontSize: "1.12em" },
  { tag: tags.emphasis, fontStyle: "italic" },
  { tag: tags.strong, fontWeight: "700" },
  { tag: tags.strikethrough, textDecoration: "line-through" },
  { tag: [tags.link, tags.url], color: "#0b5cad", textDecoration: "underline" },
  { tag: tags.monospace, fontFamily: "ui-monospace, monospace" },
  {
    tag: [tags.processingInstruction, tags.contentSeparator, tags.quote, tags.escape, tags.meta],
    color: "#4f5964",
  },
]);

const theme = EditorView.theme({
  "&": { border: "1px solid #7a8590", borderRadius: "4px", background: "#fff" },
  "&.cm-focused": { outline: "3px solid #f0a500", outlineOffset: "2px" },
  ".cm-scroller": { fontFamily: "inherit", lineHeight: "1.6", minHeight: "12rem" },
  // Room above the first line for the name label of a cursor there.
  ".cm-content": { padding: "1.4em .75rem 1rem", caretColor: "#1d232b" },
  // Names stay readable whatever a person's colour: white on dark ink, the colour as a stripe.
  ".cm-ySelectionInfo": {
    opacity: "1",
    color: "#fff",
    backgroundColor: "#1d232b",
    borderLeft: ".3em solid",
    borderColor: "inherit",
    fontFamily: "inherit",
    padding: "0 .3em",
    borderRadius: "2px",
  },
  ".cm-ySelectionCaretDot": { display: "none" },
});

// A draft section's source references `[^s<id>]` show as badges; their tooltip says where
// the words come from (the page's #source-labels map, from cop/drafts/views.py). The text
// stays as typed, so a reference moves, copies and deletes with the words it supports.
function sourceBadges(labels) {
  const decorator = new MatchDecorator({
    regexp: /\[\^s(\d{1,9})\]/g,
    decoration: (match) =>
      Decoration.mark({
        class: "cm-source-ref",
        attributes: labels[match[1]] ? { title: labels[match[1]] } : {},
      }),
  });
  return ViewPlugin.define((view) => ({
    decorations: decorator.createDeco(view),
    update(update) {
      this.decorations = decorator.updateDeco(update, this.decorations);
    },
  }), { decorations: (plugin) => plugin.decorations });
}

function readSourceLabels() {
  const block = document.getElementById("source-labels");
  if (!block) return null;
  try {
    return JSON.parse(block.textContent);
  } catch {
    return null;
  }
}

function mount(root) {
  const data = root.dataset;
  const canWrite = data.canWrite === "true";
  const bar = root.querySelector(".note-bar");
  const statusText = root.querySelector("#note-status");
  const statusBox = statusText.closest(".note-status");
  const errors = root.querySelector("#note-errors");
  const savedText = root.querySelector("#note-saved-text");
  const fallbackHint = root.querySelector(".note-fallback");
  const editorBox = root.querySelector("#note-editor");
  const keysHint = root.querySelector("#note-keys");
  const presenceBox = root.querySelector(".note-presence");
  const presenceList = root.querySelector("#note-presence");
  const previewToggle = root.querySelector(".note-preview-toggle");
  const previewBox = root.querySelector("#note-preview");
  const previewBody = previewBox.querySelector(".note-preview-body");

  const sourceLabels = readSourceLabels();
  const ydoc = new Y.Doc();
  const ytext = ydoc.getText(TEXT_NAME);
  // disableBc: tabs of one browser must not exchange edits behind the server's back.
  const provider = new SocketIOProvider(window.location.origin, "note-" + data.noteId, ydoc, {
    autoConnect: false,
    disableBc: true,
  });
  // The server replaces `user` with the name, colour and organisation it knows: this is
  // only what y-codemirror.next needs locally until then.
  provider.awareness.setLocalStateField("user", {
    name: data.userName,
    color: "#4f5964",
    colorLight: "#4f596433",
  });
  const undoManager = new Y.UndoManager(ytext);

  // --- Status and errors --------------------------------------------------------------
  // socket.io retries a lost connection by itself, but not one the server refused or closed
  // (logged out, no longer a member): the socket is then no longer active.
  let everConnected = false;
  function showStatus() {
    let state;
    if (provider.socket.connected) state = "connected";
    else if (!navigator.onLine || !provider.socket.active) state = "offline";
    else state = everConnected ? "reconnecting" : "connecting";
    if (statusBox.dataset.state !== state) {
      statusBox.dataset.state = state;
      statusText.textContent = data["label" + state[0].toUpperCase() + state.slice(1)];
    }
  }
  function showError(message) {
    // Empty first, so that the same message said twice is announced twice.
    errors.textContent = "";
    window.setTimeout(() => {
      errors.textContent = message;
    }, 50);
  }
  function showStatusOrClosure() {
    if (!provider.socket.active) showError(data.labelClosed);
    showStatus();
  }
  provider.on("status", ({ status }) => {
    if (status === "connecting") return; // said before the socket opens: see the end of mount
    if (status === "connected") {
      everConnected = true;
      errors.textContent = "";
    }
    if (status === "disconnected") showStatusOrClosure();
    else showStatus();
  });
  provider.on("connection-error", showStatusOrClosure);
  provider.socket.io.on("reconnect_attempt", showStatus);
  window.addEventListener("online", showStatus);
  window.addEventListener("offline", showStatus);

  // --- Editor -------------------------------------------------------------------------
  const editable = new Compartment();
  const editability = (writable) => [
    EditorState.readOnly.of(!writable),
    EditorView.editable.of(writable),
    EditorView.contentAttributes.of({ "aria-readonly": String(!writable) }),
  ];
  const view = new EditorView({
    parent: editorBox,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        EditorView.cspNonce.of(data.cspNonce),
        highlightSpecialChars(),
        drawSelection(),
        EditorView.lineWrapping,
        new LanguageSupport(markdownLanguage, [Prec.high(keymap.of(markdownKeymap)), pasteURLAsLink]),
        syntaxHighlighting(highlightStyle),
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
        yCollab(ytext, provider.awareness, { undoManager }),
        editable.of(editability(canWrite)),
        EditorView.contentAttributes.of({ "aria-label": data.labelEditor, "aria-multiline": "true" }),
        canWrite ? EditorView.contentAttributes.of({ "aria-describedby": "note-keys" }) : [],
        sourceLabels ? sourceBadges(sourceLabels) : [],
        theme,
      ],
    }),
  });

  provider.socket.on("note-error", (payload) => {
    if (!payload || typeof payload.message !== "string") return;
    showError(payload.message);
    if (payload.error === "read_only") view.dispatch({ effects: editable.reconfigure(editability(false)) });
  });

  // Show the editor once it holds the server's text: until then the saved text stays.
  let revealed = false;
  function reveal() {
    if (revealed) return;
    revealed = true;
    savedText.hidden = true;
    fallbackHint.hidden = true;
    editorBox.hidden = false;
    keysHint.hidden = !canWrite;
    view.requestMeasure();
  }
  const onFirstUpdate = (_update, origin) => {
    if (origin === provider) {
      ydoc.off("update", onFirstUpdate);
      reveal();
    }
  };
  ydoc.on("update", onFirstUpdate);
  provider.on("sync", (synced) => {
    if (!synced || revealed) return;
    if (savedText.textContent === "" || ytext.length > 0) reveal();
    else window.setTimeout(reveal, REVEAL_LIMIT);
  });

  // --- Presence: who is here, as the server names them --------------------------------
  let shownPresence = "";
  function showPresence() {
    const people = [];
    const seen = new Set();
    for (const [clientId, state] of provider.awareness.getStates()) {
      if (clientId === ydoc.clientID) continue;
      const user = state && state.user;
      if (!user || typeof user.name !== "string") continue;
      const organisation = typeof user.organisation === "string" ? user.organisation : "";
      const key = user.name + "\u0000" + organisation;
      if (seen.has(key)) continue; // one person with two tabs
      seen.add(key);
      people.push({ name: user.name, organisation, color: typeof user.color === "string" ? user.color : "" });
    }
    people.sort((a, b) => a.name.localeCompare(b.name));
    const key = JSON.stringify(people);
    if (key === shownPresence) return;
    shownPresence = key;
    const items = [person({ name: data.userName, organisation: data.userOrganisation, color: "" }, true)];
    for (const other of people) items.push(person(other, false));
    presenceList.replaceChildren(...items);
  }
  function person({ name, organisation, color }, isSelf) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "note-swatch";
    swatch.setAttribute("aria-hidden", "true");
    if (color) swatch.style.backgroundColor = color; // CSSOM: not an inline style attribute
    const label = document.createElement("span");
    label.className = "note-person";
    label.textContent = isSelf ? `${name} (${data.labelYou})` : name;
    item.append(swatch, label);
    if (organisation) {
      const where = document.createElement("span");
      where.className = "note-organisation";
      where.textContent = organisation;
      item.append(" ", where);
    }
    return item;
  }
  provider.awareness.on("change", showPresence);

  // --- Preview: the server renders and sanitises ---------------------------------------
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  let previewTimer = 0;
  let previewRequest = null;
  async function refreshPreview() {
    if (previewRequest) previewRequest.abort();
    const request = (previewRequest = new AbortController());
    try {
      const response = await fetch(data.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken },
        body: new URLSearchParams({ text: ytext.toString() }),
        signal: request.signal,
      });
      if (!response.ok) throw new Error(String(response.status));
      const html = await response.text();
      if (request === previewRequest) previewBody.innerHTML = html; // sanitised by the server
    } catch (error) {
      if (error.name !== "AbortError") showError(data.labelPreviewFailed);
    }
  }
  previewToggle.addEventListener("click", () => {
    const open = previewToggle.getAttribute("aria-pressed") !== "true";
    previewToggle.setAttribute("aria-pressed", String(open));
    previewBox.hidden = !open;
    if (open) refreshPreview();
  });
  ytext.observe(() => {
    if (previewBox.hidden) return;
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(refreshPreview, PREVIEW_DELAY);
  });

  bar.hidden = false;
  presenceBox.hidden = false;
  showPresence();
  provider.connect();
  showStatus();
}

const root = document.getElementById("note");
if (root) mount(root);
