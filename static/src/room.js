// The live room of a workshop session (docs/workshop-room.md): phase, countdown, cards,
// clusters, dots, takeaways, hands, spotlight, the note's lock and breakout groups, over the
// Socket.IO namespace /workshop. The server decides: the page sends commands and shows the
// state the server broadcasts. Every sentence shown comes from the template (#room-text,
// translated there); what people wrote is only ever inserted as text (textContent), never
// as HTML. The page without this script shows the session's plan, question and note link.

import { io } from "socket.io-client";

const PHASES = ["prepare", "collect", "cluster", "vote", "discuss", "synthesise", "closed"];
const KINDS = ["key_issue", "lever", "condition"];
const CARD_MAX = 500; // cop/workshops/models.py CARD_MAX
const ANSWER_LIMIT = 10000; // ms the server has to answer a command
const TICK = 250; // ms between two looks at a running countdown
const RENDER_DELAY = 20; // ms to gather a burst of changes into one redraw
const HOLD_LIMIT = 5000; // ms a pressed pointer may hold redraws back before a drag starts

const PROPERTIES = ["hidden", "disabled", "checked", "selected", "value", "draggable"];

// Build an element: `text` sets its text (never HTML), `on*` adds listeners, `false`,
// `null` and `undefined` leave an attribute out; children are nodes or plain strings.
function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (PROPERTIES.includes(name)) node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

function button(label, props = {}) {
  return element("button", { type: "button", ...props }, label);
}

function clockText(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

function characters(text) {
  return [...text].length; // as the server counts them: code points, not UTF-16 units
}

function byPosition(a, b) {
  return (a.position ?? 0) - (b.position ?? 0) || a.id - b.id;
}

function upsert(list, item, order = (a, b) => a.id - b.id) {
  const at = list.findIndex((other) => other.id === item.id);
  if (at >= 0) list[at] = item;
  else list.push(item);
  list.sort(order);
}

function mount(root) {
  const data = root.dataset;
  const text = JSON.parse(document.getElementById("room-text").textContent);
  const sessionId = Number(data.sessionId);
  const userId = Number(data.userId);
  const byId = (id) => document.getElementById(id);

  // Sentences: `{name}` is filled in; plurals come for 0, 1 and 2 (English and French).
  const fill = (sentence, values = {}) =>
    sentence.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
  const plural = (key, n) => fill(text[key][Math.min(n, 2)], { n });

  const statusText = byId("room-status");
  const statusBox = statusText.closest(".room-status");
  const errors = byId("room-errors");
  const announcer = byId("room-announcer");
  const steps = byId("room-steps");
  const phaseHelp = byId("room-phase-help");
  const clock = byId("room-clock");
  const clockState = byId("room-clock-state");
  const board = byId("room-board");
  const dots = byId("room-dots");
  const postForm = byId("room-post");
  const postBody = byId("room-post-body");
  const postCount = byId("room-post-count");
  const postAnonymous = byId("room-post-anonymous");
  const takeawaysBox = byId("room-takeaways-box");
  const takeawayList = byId("room-takeaways");
  const takeawayForm = byId("room-add-takeaway");
  const handButton = byId("room-hand");
  const handList = byId("room-hands");
  const noteLink = byId("room-note-link");
  const noteState = byId("room-note-state");
  const noteLock = byId("room-note-lock");
  const groupsWhere = byId("room-groups-where");
  const groupList = byId("room-groups");
  const visitSelect = byId("room-visit-group");
  const presentList = byId("room-present");
  const presentCount = byId("room-present-count");
  const spotlightBox = byId("room-spotlight");
  const spotlightBody = byId("room-spotlight-body");
  const spotlightClear = byId("room-spotlight-clear");

  const fromPage = {
    canFacilitate: data.canFacilitate === "true",
    canTakePart: data.canTakePart === "true",
    rules: {
      dots_per_person: Number(data.dotsPerPerson),
      max_dots_per_card: Number(data.maxDotsPerCard),
      allows_anonymous_cards: data.allowsAnonymous === "true",
    },
  };
  let state = null; // the room as the server last described it (docs/workshop-room.md)
  // What this screen holds that the server does not: text being typed, choices not sent.
  const ui = {
    editing: null, // {id, draft}: the own card being edited
    hiding: null, // {id, draft}: the card a facilitator is hiding, and why
    renaming: null, // {id, draft}: the cluster being renamed
    moveTo: new Map(), // card id -> the cluster chosen in its "Move to" menu, not yet moved
    dragging: null, // the card being dragged
    holding: false, // a pointer is down on a draggable card: a drag may start
    visiting: null, // the group a facilitator visits (null: the plenary)
  };

  const socket = io("/workshop", { transports: ["websocket"], autoConnect: false });

  // --- Status, errors, announcements --------------------------------------------------
  let everConnected = false;
  function showStatus() {
    let now;
    if (socket.connected) now = "connected";
    else if (!navigator.onLine || !socket.active) now = "offline";
    else now = everConnected ? "reconnecting" : "connecting";
    if (statusBox.dataset.state !== now) {
      statusBox.dataset.state = now;
      statusText.textContent = text[now];
    }
  }
  // A refusal comes twice, as `workshop-error` and in the answer: say it once.
  let lastError = { message: "", at: -Infinity };
  function showError(message) {
    const at = performance.now();
    if (message === lastError.message && at - lastError.at < 2000) return;
    lastError = { message, at };
    errors.textContent = ""; // emptied first, so that the same message said again is heard
    window.setTimeout(() => {
      errors.textContent = message;
    }, 50);
  }
  function announce(message) {
    announcer.textContent = "";
    window.setTimeout(() => {
      announcer.textContent = message;
    }, 50);
  }

  // --- Commands -----------------------------------------------------------------------
  function send(event, fields = {}, done = null) {
    if (!socket.connected) {
      showError(text.notSent);
      return;
    }
    socket.timeout(ANSWER_LIMIT).emit(event, { session_id: sessionId, ...fields }, (failure, answer) => {
      if (failure) showError(text.noAnswer);
      else if (!answer || answer.ok !== true) {
        showError((answer && typeof answer.message === "string" && answer.message) || text.refused);
      } else {
        errors.textContent = "";
        lastError = { message: "", at: -Infinity };
        if (done) done(answer);
      }
    });
  }

  // The server reads the state it answers `join` with after the socket entered the room,
  // but a change committed meanwhile is broadcast before that answer arrives. Changes that
  // arrive while a join is pending wait here and are applied, in order, on top of the
  // answer: each one sets values (it never adds to them), so one the answer already holds
  // changes nothing, and one it lacks is not lost.
  let arrivedWhileJoining = null; // [apply, payload] pairs; null when no join is pending
  function join() {
    arrivedWhileJoining = [];
    socket.timeout(ANSWER_LIMIT).emit("join", { session_id: sessionId }, (failure, answer) => {
      if (failure) {
        showError(text.noAnswer);
        if (socket.connected) window.setTimeout(join, 2000);
        return;
      }
      const arrived = arrivedWhileJoining;
      arrivedWhileJoining = null;
      if (!answer || answer.ok !== true) {
        showError((answer && answer.message) || text.refused);
        return;
      }
      const before = state && state.phase;
      adopt(answer);
      for (const [apply, payload] of arrived) apply(payload);
      if (before && before !== state.phase) announcePhase();
      render();
    });
  }

  // The whole state, as `join` answers it; what the answer lacks keeps the page's values.
  function adopt(answer) {
    const given = answer.state || {};
    const rules = { ...fromPage.rules, ...(given.rules || {}) };
    state = {
      phase: given.phase || "prepare",
      timer: given.timer || null,
      spotlight: given.spotlight || null,
      note: given.note || null,
      breakout_open: Boolean(given.breakout_open),
      rules,
      clusters: [...(given.clusters || [])].sort(byPosition),
      cards: [...(given.cards || [])].sort((a, b) => a.id - b.id),
      takeaways: [...(given.takeaways || [])].sort(byPosition),
      hands: given.hands || [],
      present: given.present || [],
      groups: given.groups || [],
      you: {
        user_id: userId,
        can_facilitate: answer.can_facilitate ?? fromPage.canFacilitate,
        can_take_part: answer.can_take_part ?? fromPage.canTakePart,
        group_id: null,
        card_ids: [],
        votes: {},
        dots_left: rules.dots_per_person,
        hand_raised: false,
        ...(given.you || {}),
      },
    };
    setTimer(state.timer, given.server_now);
  }

  // --- Changes the server broadcasts --------------------------------------------------
  let renderTimer = 0;
  function schedule() {
    if (!renderTimer) renderTimer = window.setTimeout(render, RENDER_DELAY);
  }
  function on(event, apply) {
    socket.on(event, (payload) => {
      if (!payload || typeof payload !== "object") return;
      if (arrivedWhileJoining) arrivedWhileJoining.push([apply, payload]);
      else if (state) {
        apply(payload);
        schedule();
      }
    });
  }
  on("session-state", (change) => {
    if (change.session_id !== undefined && change.session_id !== sessionId) return;
    const before = state.phase;
    for (const key of ["phase", "spotlight", "note", "breakout_open"]) {
      if (key in change) state[key] = change[key];
    }
    if ("timer" in change) {
      state.timer = change.timer;
      setTimer(change.timer, change.server_now);
    }
    if ("votes" in change) {
      for (const card of state.cards) card.votes = change.votes ? (change.votes[card.id] ?? 0) : null;
    }
    if (state.phase !== before) {
      if (state.phase !== "collect") ui.editing = null;
      if (state.phase !== "cluster") ui.renaming = null;
      announcePhase();
    }
  });
  on("card", ({ card }) => card && upsert(state.cards, card));
  on("card-removed", ({ card_id }) => {
    state.cards = state.cards.filter((card) => card.id !== card_id);
    state.you.card_ids = state.you.card_ids.filter((id) => id !== card_id);
  });
  on("cluster", ({ cluster }) => cluster && upsert(state.clusters, cluster, byPosition));
  on("cluster-removed", ({ cluster_id }) => {
    state.clusters = state.clusters.filter((cluster) => cluster.id !== cluster_id);
    for (const card of state.cards) if (card.cluster_id === cluster_id) card.cluster_id = null;
    for (const takeaway of state.takeaways) {
      takeaway.cluster_ids = (takeaway.cluster_ids || []).filter((id) => id !== cluster_id);
    }
  });
  on("takeaway", ({ takeaway }) => takeaway && upsert(state.takeaways, takeaway, byPosition));
  on("takeaway-removed", ({ takeaway_id }) => {
    state.takeaways = state.takeaways.filter((takeaway) => takeaway.id !== takeaway_id);
  });
  on("hands", ({ hands }) => {
    if (Array.isArray(hands)) state.hands = hands;
  });
  on("presence", ({ person, here }) => {
    if (!person) return;
    state.present = state.present.filter((other) => other.user_id !== person.user_id);
    if (here) state.present.push(person);
  });
  on("groups", (change) => {
    if (Array.isArray(change.groups)) state.groups = change.groups;
    if ("breakout_open" in change) state.breakout_open = Boolean(change.breakout_open);
    if (!state.groups.some((group) => group.id === ui.visiting)) ui.visiting = null;
  });
  on("you", (you) => Object.assign(state.you, you));
  socket.on("workshop-error", (payload) => {
    if (payload && typeof payload.message === "string") showError(payload.message);
  });

  function announcePhase() {
    announce(fill(text.phaseNow, { phase: text.phases[state.phase] || state.phase }));
  }

  // --- The countdown ------------------------------------------------------------------
  // The server gives its deadline and its own time: the time left when the message arrived
  // is their difference, counted down on this screen's monotonic clock, so a screen whose
  // clock is off by minutes still shows what every other screen shows.
  let endsAt = null; // performance.now() at which the running countdown reaches zero
  let pausedSeconds = null;
  let saidLastMinute = false;
  let saidEnd = false;
  let ticker = 0;
  function setTimer(timer, serverNow) {
    const received = performance.now();
    endsAt = null;
    pausedSeconds = null;
    if (timer && timer.ends_at && serverNow) {
      const left = Date.parse(timer.ends_at) - Date.parse(serverNow);
      if (!Number.isNaN(left)) endsAt = received + left;
    } else if (timer && typeof timer.paused_seconds === "number") {
      pausedSeconds = timer.paused_seconds;
    }
    const seconds = secondsLeft();
    if (seconds === null || seconds > 60) saidLastMinute = false;
    if (seconds === null || seconds > 0) saidEnd = false;
    else if (endsAt !== null) saidEnd = saidLastMinute = true; // it ended before this message
    window.clearInterval(ticker);
    if (endsAt !== null && seconds > 0) ticker = window.setInterval(showClock, TICK);
    showClock();
  }
  function secondsLeft() {
    if (endsAt !== null) return Math.max(0, Math.ceil((endsAt - performance.now()) / 1000));
    return pausedSeconds;
  }
  function showClock() {
    const seconds = secondsLeft();
    const shown = seconds === null ? text.noTimer : clockText(seconds);
    if (clock.textContent !== shown) clock.textContent = shown;
    clockState.hidden = pausedSeconds === null;
    clockState.textContent = text.paused;
    clock.classList.toggle("is-ending", endsAt !== null && seconds <= 60);
    clock.classList.toggle("is-idle", seconds === null);
    if (endsAt === null) return;
    if (seconds > 0 && seconds <= 60 && !saidLastMinute) {
      saidLastMinute = true;
      announce(text.lastMinute);
    }
    if (seconds === 0 && !saidEnd) {
      saidEnd = saidLastMinute = true;
      announce(text.timeUp);
      window.clearInterval(ticker);
    }
  }

  // --- Drawing ------------------------------------------------------------------------
  // Parts are redrawn from the state; the control that had the focus (its data-key) gets
  // it back, with the caret where it was, so that keyboard users keep their place.
  let focusNext = null;
  function render() {
    window.clearTimeout(renderTimer);
    renderTimer = 0;
    if (!state) return;
    if (ui.dragging !== null || ui.holding) return; // redrawn on dragend: the card must stay
    const active = document.activeElement;
    const key = active && root.contains(active) ? active.dataset.key : undefined;
    const caret = key && "selectionStart" in active ? [active.selectionStart, active.selectionEnd] : null;
    renderPhase();
    renderControls();
    renderSpotlight();
    renderDots();
    renderBoard();
    renderTakeaways();
    renderHands();
    renderNote();
    renderGroups();
    renderPresence();
    const wanted = focusNext || (key && !active.isConnected ? key : null);
    focusNext = null;
    if (wanted) {
      const target = root.querySelector(`[data-key="${CSS.escape(wanted)}"]`);
      if (target) {
        target.focus();
        if (caret && wanted === key && "setSelectionRange" in target) {
          try {
            target.setSelectionRange(caret[0], caret[1]);
          } catch {
            // not a text field any more
          }
        }
      }
    }
  }

  const facilitating = () => Boolean(state.you.can_facilitate) && state.phase !== "closed";
  const takingPart = () => Boolean(state.you.can_take_part) && state.phase !== "closed";
  // The group whose cards and note this screen shows: a participant's own group while the
  // groups are open; the group a facilitator visits.
  function viewGroup() {
    if (state.you.can_facilitate) return ui.visiting;
    if (!state.breakout_open) return null;
    const mine = state.groups.find((group) => (group.user_ids || []).includes(state.you.user_id));
    return mine ? mine.id : (state.you.group_id ?? null);
  }
  const authorId = (card) => (card.author ? (card.author.user_id ?? card.author.id) : null);
  const isMine = (card) => state.you.card_ids.includes(card.id) || authorId(card) === state.you.user_id;
  const phaseIndex = (phase) => PHASES.indexOf(phase);

  function renderPhase() {
    for (const item of steps.children) {
      const phase = item.dataset.phase;
      if (phase === state.phase) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
      item.classList.toggle("is-done", phaseIndex(phase) < phaseIndex(state.phase));
    }
    phaseHelp.textContent = text.phaseHelp[state.phase] || "";
  }

  function show(id, visible) {
    const node = byId(id);
    if (node) node.hidden = !visible;
  }

  function renderControls() {
    const facilitator = facilitating();
    show("room-clock-box", state.phase !== "closed");
    show("room-record", state.phase === "closed");
    show("room-timer-controls", facilitator);
    show("room-phase-controls", facilitator);
    show("room-add-cluster", facilitator && state.phase === "cluster");
    show("room-cluster-hint", facilitator && state.phase === "cluster");
    show("room-add-takeaway", facilitator && state.phase === "synthesise");
    show("room-group-controls", facilitator);
    if (noteLock) noteLock.hidden = !facilitator;
    if (postForm) postForm.hidden = !(takingPart() && state.phase === "collect");
    if (handButton) handButton.hidden = !takingPart();
    if (spotlightClear) spotlightClear.hidden = !facilitator;
    if (facilitator) {
      const at = phaseIndex(state.phase);
      const back = byId("room-phase-back");
      const next = byId("room-phase-next");
      back.hidden = at <= 0;
      if (at > 0) back.textContent = fill(text.phaseBack, { phase: text.phases[PHASES[at - 1]] });
      const following = PHASES[at + 1];
      next.textContent =
        following === "closed" ? text.closeSession : fill(text.phaseNext, { phase: text.phases[following] });
      const running = state.timer && state.timer.ends_at;
      const paused = state.timer && state.timer.paused_seconds != null;
      setUsable(root.querySelector('[data-timer="pause"]'), Boolean(running));
      setUsable(root.querySelector('[data-timer="resume"]'), Boolean(paused));
      for (const more of root.querySelectorAll('[data-timer="add"]')) {
        setUsable(more, Boolean(running || paused));
      }
    }
  }

  // Unusable controls stay focusable (aria-disabled), so that focus is never lost.
  function setUsable(control, usable) {
    if (!control) return;
    if (usable) control.removeAttribute("aria-disabled");
    else control.setAttribute("aria-disabled", "true");
  }

  function authorLine(card) {
    let who = text.anonymous;
    if (card.author) {
      who = card.author.organisation ? `${card.author.name} · ${card.author.organisation}` : card.author.name;
    }
    return isMine(card) ? `${who} (${text.yourCard})` : who;
  }

  function renderSpotlight() {
    const spot = state.spotlight;
    let content = null;
    if (spot && spot.kind === "card") {
      const card = state.cards.find((other) => other.id === spot.id);
      if (card) {
        content = [
          element("p", { className: "room-card-text", text: card.body ?? text.hiddenForAll }),
          element("p", { className: "hint", text: authorLine(card) }),
        ];
      }
    } else if (spot && spot.kind === "cluster") {
      const cluster = state.clusters.find((other) => other.id === spot.id);
      if (cluster) {
        const cards = state.cards.filter((card) => card.cluster_id === cluster.id && card.group_id == null);
        content = [
          element("h3", { text: fill(text.spotlightCluster, { name: cluster.label }) }),
          element("ul", {}, ...cards.map((card) => element("li", { text: card.body ?? text.hiddenForAll }))),
        ];
      }
    }
    spotlightBox.hidden = content === null;
    spotlightBody.replaceChildren(...(content || []));
  }

  function renderDots() {
    const voting = takingPart() && state.phase === "vote";
    dots.hidden = !voting;
    if (voting) {
      const shown = plural("dotsLeft", Math.max(0, state.you.dots_left ?? 0));
      if (dots.textContent !== shown) dots.textContent = shown;
    }
  }

  function renderBoard() {
    const group = viewGroup();
    const cards = state.cards.filter((card) => (card.group_id ?? null) === group);
    const clustering = facilitating() && state.phase === "cluster";
    if (state.clusters.length === 0 && !clustering) {
      board.replaceChildren(cardList(cards));
      return;
    }
    const known = new Set(state.clusters.map((cluster) => cluster.id));
    const loose = cards.filter((card) => !known.has(card.cluster_id));
    const sections = [];
    if (loose.length || clustering) sections.push(clusterSection(null, loose));
    for (const cluster of state.clusters) {
      sections.push(clusterSection(cluster, cards.filter((card) => card.cluster_id === cluster.id)));
    }
    board.replaceChildren(element("div", { className: "room-clusters" }, ...sections));
  }

  function cardList(cards) {
    if (cards.length === 0) return element("p", { className: "hint", text: text.noCards });
    return element("ul", { className: "room-cards" }, ...cards.map(cardNode));
  }

  function clusterSection(cluster, cards) {
    const id = cluster ? cluster.id : null;
    const headingId = `room-cluster-${id ?? "none"}`;
    const spotlit = Boolean(cluster) && isSpotlit("cluster", id);
    const section = element("section", {
      className: "room-cluster" + (spotlit ? " is-spotlit" : ""),
      "aria-labelledby": headingId,
      "data-cluster": id ?? "none",
    });
    const header = element(
      "div",
      { className: "room-cluster-header" },
      element("h3", { id: headingId, text: cluster ? cluster.label : text.unclustered }),
      element("span", { className: "hint", text: plural("cardCount", cards.length) }),
    );
    section.append(header);
    if (cluster && facilitating()) section.append(clusterTools(cluster, headingId, spotlit));
    section.append(cardList(cards));
    if (facilitating() && state.phase === "cluster") acceptDrops(section, id);
    return section;
  }

  function clusterTools(cluster, headingId, spotlit) {
    const key = `cluster-${cluster.id}`;
    if (ui.renaming && ui.renaming.id === cluster.id) {
      const inputId = `${key}-name`;
      const input = element("input", {
        type: "text",
        id: inputId,
        maxlength: 120,
        required: true,
        value: ui.renaming.draft,
        "data-key": `${key}-name`,
        oninput: () => (ui.renaming.draft = input.value),
        onkeydown: (event) => event.key === "Escape" && stopRenaming(key),
      });
      return element(
        "form",
        {
          className: "room-inline-form",
          onsubmit: (event) => {
            event.preventDefault();
            const label = input.value.trim();
            if (!label) return showError(text.emptyCard);
            send("rename_cluster", { cluster_id: cluster.id, label }, () => stopRenaming(key));
          },
        },
        element("label", { for: inputId, text: text.renameLabel }),
        input,
        element("button", { type: "submit", "data-key": `${key}-save` }, text.save),
        button(text.cancel, { className: "secondary", onclick: () => stopRenaming(key) }),
      );
    }
    const tools = element("div", { className: "actions" });
    if (state.phase === "cluster") {
      tools.append(
        button(text.rename, {
          className: "secondary",
          "data-key": `${key}-rename`,
          "aria-describedby": headingId,
          onclick: () => {
            ui.renaming = { id: cluster.id, draft: cluster.label };
            focusNext = `${key}-name`;
            render();
          },
        }),
        button(text.remove, {
          className: "secondary",
          "data-key": `${key}-remove`,
          "aria-describedby": headingId,
          onclick: () => send("remove_cluster", { cluster_id: cluster.id }),
        }),
      );
    }
    tools.append(spotlightButton("cluster", cluster.id, spotlit, headingId, `${key}-spotlight`));
    return tools;
  }

  function stopRenaming(key) {
    ui.renaming = null;
    focusNext = `${key}-rename`;
    render();
  }

  function isSpotlit(kind, id) {
    return Boolean(state.spotlight && state.spotlight.kind === kind && state.spotlight.id === id);
  }

  function spotlightButton(kind, id, spotlit, describedBy, key) {
    return button(text.spotlight, {
      className: "secondary",
      "aria-pressed": String(Boolean(spotlit)),
      "aria-describedby": describedBy,
      "data-key": key,
      onclick: () => send("spotlight", spotlit ? { kind: null, id: null } : { kind, id }),
    });
  }

  function acceptDrops(section, clusterId) {
    section.addEventListener("dragover", (event) => {
      if (ui.dragging === null) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      section.classList.add("is-drop-target");
    });
    section.addEventListener("dragleave", (event) => {
      if (!section.contains(event.relatedTarget)) section.classList.remove("is-drop-target");
    });
    section.addEventListener("drop", (event) => {
      event.preventDefault();
      section.classList.remove("is-drop-target");
      const cardId = Number(event.dataTransfer.getData("text/plain")) || ui.dragging;
      const card = state.cards.find((other) => other.id === cardId);
      if (card && (card.cluster_id ?? null) !== clusterId) {
        send("move_card", { card_id: cardId, cluster_id: clusterId });
      }
    });
  }

  function cardNode(card) {
    const key = `card-${card.id}`;
    const textId = `room-${key}-text`;
    const mine = isMine(card);
    const spotlit = isSpotlit("card", card.id);
    const clustering = facilitating() && state.phase === "cluster";
    const item = element("li", {
      className: ["room-card", mine && "is-mine", card.hidden && "is-hidden", spotlit && "is-spotlit"]
        .filter(Boolean)
        .join(" "),
      "data-card": card.id,
      draggable: clustering,
    });
    if (clustering) {
      item.addEventListener("pointerdown", (event) => {
        if (event.target.closest("button, select, input, textarea, label, a")) return;
        ui.holding = true;
        window.setTimeout(letGo, HOLD_LIMIT); // in case the pointer comes up unseen
      });
      item.addEventListener("dragstart", (event) => {
        ui.dragging = card.id;
        event.dataTransfer.setData("text/plain", String(card.id));
        event.dataTransfer.effectAllowed = "move";
        item.classList.add("is-dragging");
      });
      item.addEventListener("dragend", () => {
        ui.dragging = null;
        schedule();
      });
    }

    if (ui.editing && ui.editing.id === card.id) {
      item.append(editForm(card, key));
      return item;
    }
    item.append(
      element("p", { className: "room-card-text", id: textId, text: card.body ?? text.hiddenForAll }),
      element("p", { className: "room-card-author", text: authorLine(card) }),
    );
    if (card.hidden && card.hidden_reason) {
      const why = fill(text.hiddenBecause, { reason: card.hidden_reason });
      item.append(element("p", { className: "room-card-hidden", text: why }));
    }
    if (card.votes !== null && card.votes !== undefined) {
      item.append(element("p", { className: "room-card-votes", text: plural("dotsTotal", card.votes) }));
    }
    if (takingPart() && state.phase === "vote" && !card.hidden) item.append(voteControls(card, key, textId));

    const actions = element("div", { className: "actions" });
    if (mine && state.phase === "collect" && !card.hidden) {
      actions.append(
        button(text.edit, {
          className: "secondary",
          "data-key": `${key}-edit`,
          "aria-describedby": textId,
          onclick: () => {
            ui.editing = { id: card.id, draft: card.body || "" };
            focusNext = `${key}-body`;
            render();
          },
        }),
        button(text.withdraw, {
          className: "secondary",
          "data-key": `${key}-withdraw`,
          "aria-describedby": textId,
          onclick: () =>
            send("withdraw_card", { card_id: card.id }, () => {
              focusNext = "post-body"; // the card and its buttons are gone
              render();
            }),
        }),
      );
    }
    if (clustering) actions.append(moveTo(card, key, textId));
    if (facilitating()) {
      if (ui.hiding && ui.hiding.id === card.id) actions.append(hideForm(card, key));
      else if (card.hidden) {
        actions.append(
          button(text.unhide, {
            className: "secondary",
            "data-key": `${key}-unhide`,
            "aria-describedby": textId,
            onclick: () => send("unhide_card", { card_id: card.id }),
          }),
        );
      } else {
        actions.append(
          button(text.hide, {
            className: "secondary",
            "data-key": `${key}-hide`,
            "aria-describedby": textId,
            onclick: () => {
              ui.hiding = { id: card.id, draft: "" };
              focusNext = `${key}-reason`;
              render();
            },
          }),
        );
      }
      actions.append(spotlightButton("card", card.id, spotlit, textId, `${key}-spotlight`));
    }
    if (actions.childNodes.length) item.append(actions);
    return item;
  }

  function voteControls(card, key, textId) {
    const mine = Number((state.you.votes || {})[card.id] || 0);
    const left = state.you.dots_left ?? 0;
    const minus = button("−", {
      "aria-label": text.removeDot,
      "aria-describedby": textId,
      "data-key": `${key}-unvote`,
      onclick: () => send("unvote", { card_id: card.id }),
    });
    const plus = button("+", {
      "aria-label": text.addDot,
      "aria-describedby": textId,
      "data-key": `${key}-vote`,
      // Sent even when it looks full: the server says why it refuses, in the alert region.
      onclick: () => send("vote", { card_id: card.id }),
    });
    setUsable(minus, mine > 0);
    setUsable(plus, left > 0 && mine < state.rules.max_dots_per_card);
    return element(
      "div",
      { className: "room-vote" },
      minus,
      element("span", { className: "room-vote-count", text: plural("yourDots", mine) }),
      plus,
    );
  }

  function moveTo(card, key, textId) {
    const selectId = `room-${key}-target`;
    const chosen = ui.moveTo.has(card.id) ? ui.moveTo.get(card.id) : String(card.cluster_id ?? "");
    const select = element(
      "select",
      {
        id: selectId,
        "data-key": `${key}-target`,
        "aria-describedby": textId,
        onchange: () => ui.moveTo.set(card.id, select.value),
      },
      element("option", { value: "", text: text.noCluster }),
      ...state.clusters.map((other) => element("option", { value: String(other.id), text: other.label })),
    );
    select.value = chosen;
    return element(
      "span",
      { className: "room-move" },
      element("label", { for: selectId, text: text.moveTo }),
      select,
      button(text.move, {
        className: "secondary",
        "data-key": `${key}-move`,
        "aria-describedby": textId,
        onclick: () => {
          const target = select.value ? Number(select.value) : null;
          ui.moveTo.delete(card.id);
          if (target !== (card.cluster_id ?? null)) {
            send("move_card", { card_id: card.id, cluster_id: target });
          }
        },
      }),
    );
  }

  function hideForm(card, key) {
    const inputId = `room-${key}-reason`;
    const input = element("input", {
      type: "text",
      id: inputId,
      maxlength: 300,
      required: true,
      value: ui.hiding.draft,
      "data-key": `${key}-reason`,
      oninput: () => (ui.hiding.draft = input.value),
      onkeydown: (event) => event.key === "Escape" && stopHiding(key),
    });
    return element(
      "form",
      {
        className: "room-inline-form",
        onsubmit: (event) => {
          event.preventDefault();
          const reason = input.value.trim();
          if (!reason) return showError(text.emptyCard);
          send("hide_card", { card_id: card.id, reason }, () => stopHiding(key, "unhide"));
        },
      },
      element("label", { for: inputId, text: text.hideReason }),
      input,
      element("button", { type: "submit", "data-key": `${key}-hide-confirm` }, text.hide),
      button(text.cancel, { className: "secondary", onclick: () => stopHiding(key) }),
    );
  }

  function stopHiding(key, then = "hide") {
    ui.hiding = null;
    focusNext = `${key}-${then}`;
    render();
  }

  function editForm(card, key) {
    const fieldId = `room-${key}-body`;
    const countId = `room-${key}-count`;
    const count = element("p", { className: "hint", id: countId, text: countText(ui.editing.draft) });
    const field = element("textarea", {
      id: fieldId,
      rows: 3,
      "aria-describedby": countId,
      "data-key": `${key}-body`,
      value: ui.editing.draft,
      oninput: () => {
        ui.editing.draft = field.value;
        count.textContent = countText(field.value);
      },
      onkeydown: (event) => event.key === "Escape" && stopEditing(key),
    });
    return element(
      "form",
      {
        className: "stack room-edit",
        onsubmit: (event) => {
          event.preventDefault();
          const body = checkedBody(field.value);
          if (body !== null) send("edit_card", { card_id: card.id, body }, () => stopEditing(key));
        },
      },
      element(
        "div",
        { className: "field" },
        element("label", { for: fieldId, text: text.editLabel }),
        field,
        count,
      ),
      element(
        "div",
        { className: "actions" },
        element("button", { type: "submit", "data-key": `${key}-save` }, text.save),
        button(text.cancel, { className: "secondary", onclick: () => stopEditing(key) }),
      ),
    );
  }

  function stopEditing(key) {
    ui.editing = null;
    focusNext = `${key}-edit`;
    render();
  }

  function countText(body) {
    const used = characters(body.trim());
    if (used <= CARD_MAX) return plural("charactersLeft", CARD_MAX - used);
    return plural("charactersOver", used - CARD_MAX);
  }

  // The text to send, or null after saying what is wrong with it.
  function checkedBody(value) {
    const body = value.trim();
    if (!body) showError(text.emptyCard);
    else if (characters(body) > CARD_MAX) showError(text.tooLong);
    else return body;
    return null;
  }

  function renderTakeaways() {
    const synthesising = state.phase === "synthesise";
    takeawaysBox.hidden = state.takeaways.length === 0 && !(synthesising && facilitating());
    const parts = [];
    for (const kind of KINDS) {
      const items = state.takeaways.filter((takeaway) => takeaway.kind === kind);
      if (!items.length) continue;
      parts.push(element("h3", { text: text.kinds[kind] }));
      parts.push(element("ul", { className: "room-takeaways" }, ...items.map(takeawayNode)));
    }
    if (!parts.length) parts.push(element("p", { className: "hint", text: text.noTakeaways }));
    takeawayList.replaceChildren(...parts);
    if (takeawayForm) renderClusterChoices();
  }

  function takeawayNode(takeaway) {
    const key = `takeaway-${takeaway.id}`;
    const textId = `room-${key}-text`;
    const item = element("li", {}, element("p", { id: textId, text: takeaway.text }));
    const labels = (takeaway.cluster_ids || [])
      .map((id) => state.clusters.find((cluster) => cluster.id === id))
      .filter(Boolean)
      .map((cluster) => cluster.label);
    if (labels.length) {
      const from = fill(text.takeawaysFrom, { labels: labels.join(", ") });
      item.append(element("p", { className: "hint", text: from }));
    }
    if (facilitating() && state.phase === "synthesise") {
      item.append(
        button(text.edit, {
          className: "secondary",
          "data-key": `${key}-edit`,
          "aria-describedby": textId,
          onclick: () => editTakeaway(takeaway),
        }),
        " ",
        button(text.remove, {
          className: "secondary",
          "data-key": `${key}-remove`,
          "aria-describedby": textId,
          onclick: () => send("remove_takeaway", { takeaway_id: takeaway.id }),
        }),
      );
    }
    return item;
  }

  // The clusters a new takeaway may come from: redrawn only when the clusters change, so
  // that the boxes already ticked stay ticked.
  let shownChoices = "";
  function renderClusterChoices() {
    const box = byId("room-takeaway-clusters");
    const choices = JSON.stringify(state.clusters.map((cluster) => [cluster.id, cluster.label]));
    if (choices === shownChoices) return;
    shownChoices = choices;
    const ticked = new Set([...box.querySelectorAll("input:checked")].map((input) => input.value));
    box.hidden = state.clusters.length === 0;
    box.querySelector(".room-checks").replaceChildren(
      ...state.clusters.map((cluster) =>
        element(
          "label",
          {},
          element("input", {
            type: "checkbox",
            value: String(cluster.id),
            checked: ticked.has(String(cluster.id)),
          }),
          " ",
          cluster.label,
        ),
      ),
    );
  }

  function renderHands() {
    const raised = state.hands.some((hand) => hand.user_id === state.you.user_id);
    if (handButton) {
      handButton.setAttribute("aria-pressed", String(raised));
      handButton.textContent = raised ? text.lowerHand : text.raiseHand;
    }
    const items = state.hands.map((hand) => {
      const item = element("li", {}, element("span", { text: hand.name }));
      if (facilitating()) {
        item.append(
          " ",
          button(text.lower, {
            className: "secondary",
            "aria-label": fill(text.lowerOne, { name: hand.name }),
            "data-key": `hand-${hand.user_id}`,
            onclick: () => send("lower_hand", { user_id: hand.user_id }),
          }),
        );
      }
      return item;
    });
    if (!items.length) items.push(element("li", { className: "hint", text: text.noHands }));
    handList.replaceChildren(...items);
  }

  function myGroup() {
    const group = viewGroup();
    return group === null ? null : state.groups.find((other) => other.id === group) || null;
  }

  function renderNote() {
    const group = myGroup();
    const noteId = (group && group.note_id) || (state.note && state.note.id);
    if (noteId) noteLink.href = data.noteUrl.replace(/\/0$/, `/${noteId}`);
    noteLink.textContent = group ? text.openGroupNote : text.openNote;
    const locked = Boolean(state.note && state.note.locked);
    noteState.textContent = locked ? text.noteLocked : text.noteOpen;
    if (noteLock) {
      noteLock.setAttribute("aria-pressed", String(locked));
      noteLock.textContent = locked ? text.unlockNote : text.lockNote;
    }
  }

  function nameOf(personId) {
    const person = state.present.find((other) => other.user_id === personId);
    if (person) return person.name;
    const hand = state.hands.find((other) => other.user_id === personId);
    if (hand) return hand.name;
    const card = state.cards.find((other) => authorId(other) === personId);
    return card ? card.author.name : text.someone;
  }

  function renderGroups() {
    const group = myGroup();
    groupsWhere.textContent = group ? fill(text.inGroup, { group: group.name }) : text.inPlenary;
    groupList.replaceChildren(
      ...state.groups.map((other) =>
        element(
          "li",
          { className: other === group ? "is-current" : "" },
          element("strong", { text: other.name }),
          element("span", { className: "room-members", text: (other.user_ids || []).map(nameOf).join(", ") }),
        ),
      ),
    );
    if (!visitSelect) return;
    setUsable(byId("room-everyone-back"), state.breakout_open);
    const options = [["", text.plenary], ...state.groups.map((other) => [String(other.id), other.name])];
    const shown = JSON.stringify(options);
    if (visitSelect.dataset.shown !== shown) {
      const chosen = visitSelect.value;
      visitSelect.replaceChildren(
        ...options.map(([value, label]) => element("option", { value, text: label })),
      );
      visitSelect.dataset.shown = shown;
      visitSelect.value = chosen || String(ui.visiting ?? "");
    }
  }

  function renderPresence() {
    const people = [...state.present].sort((a, b) => a.name.localeCompare(b.name));
    presentCount.textContent = plural("peopleHere", people.length);
    const focused = document.activeElement && document.activeElement.dataset.assignFor;
    presentList.replaceChildren(
      ...people.map((person) =>
        element(
          "li",
          {},
          element("span", {
            className: "room-person",
            text: person.user_id === state.you.user_id ? `${person.name} (${text.you})` : person.name,
          }),
          person.organisation
            ? element("span", { className: "room-organisation", text: person.organisation })
            : null,
          assignMenu(person),
        ),
      ),
    );
    // The list is drawn anew on each change: keep a keyboard user's place in its menus.
    if (focused) presentList.querySelector(`[data-assign-for="${focused}"]`)?.focus();
  }

  // Facilitators put a person in a group by hand (or in none: the plenary).
  function assignMenu(person) {
    if (!state.you.can_facilitate || !state.groups.length) return null;
    const current = state.groups.find((group) => (group.user_ids || []).includes(person.user_id));
    const menu = element(
      "select",
      {
        "aria-label": fill(text.groupOf, { name: person.name }),
        "data-assign-for": person.user_id,
        onchange: () => {
          const groupId = menu.value ? Number(menu.value) : null;
          send("assign", { user_id: person.user_id, group_id: groupId });
        },
      },
      element("option", { value: "", text: text.plenary }),
      ...state.groups.map((group) => element("option", { value: String(group.id), text: group.name })),
    );
    menu.value = current ? String(current.id) : "";
    return menu;
  }

  // --- The page's own controls (in the template) ---------------------------------------
  if (postForm) {
    const showCount = () => (postCount.textContent = countText(postBody.value));
    postBody.addEventListener("input", showCount);
    showCount();
    postForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = checkedBody(postBody.value);
      if (body === null) return;
      const fields = { body };
      if (postAnonymous) fields.anonymous = postAnonymous.checked;
      send("post_card", fields, (answer) => {
        postBody.value = "";
        showCount();
        if (typeof answer.card_id === "number" && !state.you.card_ids.includes(answer.card_id)) {
          state.you.card_ids.push(answer.card_id);
          schedule();
        }
        postBody.focus();
      });
    });
  }
  const addCluster = byId("room-add-cluster");
  if (addCluster) {
    addCluster.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = byId("room-cluster-label");
      const label = input.value.trim();
      if (!label) return showError(text.emptyCard);
      send("add_cluster", { label }, () => (input.value = ""));
    });
  }
  // The same form adds a takeaway or, after "Edit", changes one (kind, text and clusters).
  let editedTakeaway = null;
  function editTakeaway(takeaway) {
    editedTakeaway = takeaway.id;
    byId("room-takeaway-kind").value = takeaway.kind;
    byId("room-takeaway-text").value = takeaway.text;
    for (const input of takeawayForm.querySelectorAll(".room-checks input")) {
      input.checked = (takeaway.cluster_ids || []).includes(Number(input.value));
    }
    byId("room-takeaway-submit").textContent = text.saveTakeaway;
    byId("room-takeaway-cancel").hidden = false;
    byId("room-takeaway-text").focus();
  }
  function resetTakeawayForm() {
    editedTakeaway = null;
    byId("room-takeaway-text").value = "";
    for (const input of takeawayForm.querySelectorAll(".room-checks input")) input.checked = false;
    byId("room-takeaway-submit").textContent = text.addTakeaway;
    byId("room-takeaway-cancel").hidden = true;
  }
  if (takeawayForm) {
    byId("room-takeaway-cancel").addEventListener("click", resetTakeawayForm);
    takeawayForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const takeaway = byId("room-takeaway-text").value.trim();
      if (!takeaway) return showError(text.emptyCard);
      const ticked = takeawayForm.querySelectorAll(".room-checks input:checked");
      const fields = {
        kind: byId("room-takeaway-kind").value,
        text: takeaway,
        cluster_ids: [...ticked].map((input) => Number(input.value)),
      };
      if (editedTakeaway === null) send("add_takeaway", fields, resetTakeawayForm);
      else send("edit_takeaway", { takeaway_id: editedTakeaway, ...fields }, resetTakeawayForm);
    });
  }
  const phaseBack = byId("room-phase-back");
  if (phaseBack) {
    phaseBack.addEventListener("click", () =>
      send("set_phase", { phase: PHASES[phaseIndex(state.phase) - 1] }),
    );
    byId("room-phase-next").addEventListener("click", () =>
      send("set_phase", { phase: PHASES[phaseIndex(state.phase) + 1] }),
    );
  }
  const timerStart = byId("room-timer-start");
  if (timerStart) {
    timerStart.addEventListener("submit", (event) => {
      event.preventDefault();
      const minutes = Number(byId("room-timer-minutes").value);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 180) {
        byId("room-timer-minutes").reportValidity();
        return;
      }
      send("timer", { action: "start", minutes });
    });
    for (const control of root.querySelectorAll("[data-timer]")) {
      control.addEventListener("click", () => {
        const action = control.dataset.timer;
        send("timer", action === "add" ? { action, minutes: Number(control.dataset.minutes) } : { action });
      });
    }
  }
  if (handButton) {
    handButton.addEventListener("click", () =>
      send("hand", { raised: handButton.getAttribute("aria-pressed") !== "true" }),
    );
  }
  if (noteLock) {
    noteLock.addEventListener("click", () =>
      send("lock_note", { locked: noteLock.getAttribute("aria-pressed") !== "true" }),
    );
  }
  if (spotlightClear) {
    spotlightClear.addEventListener("click", () => send("spotlight", { kind: null, id: null }));
  }
  const openGroups = byId("room-open-groups");
  if (openGroups) {
    openGroups.addEventListener("submit", (event) => {
      event.preventDefault();
      const count = Number(byId("room-group-count").value);
      if (!Number.isInteger(count) || count < 2 || count > 20) {
        byId("room-group-count").reportValidity();
        return;
      }
      send("open_groups", { count, assign: "random" });
    });
    byId("room-everyone-back").addEventListener("click", () => send("everyone_back"));
    byId("room-visit").addEventListener("submit", (event) => {
      event.preventDefault();
      // A facilitator already receives every group's cards: visiting only changes the view.
      ui.visiting = visitSelect.value ? Number(visitSelect.value) : null;
      render();
    });
  }

  // --- Connection -----------------------------------------------------------------------
  // socket.io retries a lost connection by itself, but not one the server refused or
  // closed (logged out, no longer a member): the socket is then no longer active.
  function showStatusOrClosure() {
    if (!socket.active) showError(text.closedConnection);
    showStatus();
  }
  // A redraw would replace the card under a pointer about to drag it: wait until it is up.
  function letGo() {
    if (!ui.holding) return;
    ui.holding = false;
    schedule();
  }
  document.addEventListener("pointerup", letGo);
  document.addEventListener("pointercancel", letGo);

  socket.on("connect", () => {
    everConnected = true;
    showStatus();
    join(); // again after each reconnection: the answer is the whole current state
  });
  socket.on("disconnect", showStatusOrClosure);
  socket.on("connect_error", showStatusOrClosure);
  socket.io.on("reconnect_attempt", showStatus);
  window.addEventListener("online", showStatus);
  window.addEventListener("offline", showStatus);

  root.hidden = false;
  socket.connect();
  showStatus();
}

const root = document.getElementById("room");
if (root) mount(root);
