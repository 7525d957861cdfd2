// The prelude's source (see prelude.hpp). It records what the query selects in `def`, keeps each
// partition's state in `states` (a null-prototype object, so any partition name is a plain key)
// and collects what a handler emits until the entry point returns it as JSON. Entry points are
// read-only, non-configurable globals so that a query cannot replace them by accident.
#include "worker/projections/prelude.hpp"

namespace chorus::projections {

const char* const kPrelude = R"JS(
(function (global) {
  'use strict';
  var def = {
    allStreams: false, streams: [], categories: [], allEvents: true, events: [],
    byStreams: false, byCustomPartitions: false, definesFold: false, producesResults: false,
    definesStateTransform: false, handlesDeleted: false, biState: false,
    resultStreamName: null, includeLinks: false, reorderEvents: false, processingLag: 0
  };
  var selected = false, folded = false;
  var handlers = Object.create(null), anyHandlers = [], deletedHandlers = [];
  var initHandler = function () { return {}; }, initSharedHandler = null;
  var partitionHandler = null, transforms = [];
  var states = Object.create(null), shared, sharedReady = false;
  var emitted = [], logLines = [];
  var EMITTED_MAX = 1000, LOG_LINES_MAX = 100;

  function select(apply) {
    if (selected) throw new Error('a projection selects its source once');
    selected = true;
    apply();
  }
  function fold(byHandlers) {
    if (folded) throw new Error('when() may be called once');
    folded = true;
    def.definesFold = true;
    for (var name in byHandlers) {
      var h = byHandlers[name];
      if (typeof h !== 'function') throw new Error('the handler ' + name + ' is not a function');
      if (name === '$init') initHandler = h;
      else if (name === '$initShared') { initSharedHandler = h; def.biState = true; }
      else if (name === '$any') { anyHandlers.push(h); def.allEvents = true; }
      else if (name === '$deleted') { deletedHandlers.push(h); def.handlesDeleted = true; }
      else if (name === '$created') throw new Error('$created is not supported');
      else {
        handlers[name] = h;
        def.events.push(name);
        if (anyHandlers.length === 0) def.allEvents = false;
      }
    }
    if (anyHandlers.length > 0) def.allEvents = true;
    return output();
  }
  function output() {
    return {
      transformBy: transformBy, filterBy: filterBy, outputState: outputState,
      outputTo: outputTo, $defines_state_transform: function () {
        def.definesStateTransform = true; def.producesResults = true;
      }
    };
  }
  function transformBy(f) {
    if (typeof f !== 'function') throw new Error('transformBy takes a function');
    transforms.push(f);
    def.definesStateTransform = true;
    def.producesResults = true;
    return output();
  }
  function filterBy(f) {
    if (typeof f !== 'function') throw new Error('filterBy takes a function');
    return transformBy(function (s) { return f(s) ? s : null; });
  }
  function outputState() { def.producesResults = true; return output(); }
  function outputTo(stream) {
    def.producesResults = true;
    def.resultStreamName = String(stream);
    return output();
  }
  function afterPartition() { return { when: fold, whenAny: whenAny }; }
  function whenAny(h) { return fold({ $any: h }); }
  function afterSource(allowForeach) {
    var next = { when: fold, whenAny: whenAny, outputState: outputState,
      partitionBy: function (f) {
        if (typeof f !== 'function') throw new Error('partitionBy takes a function');
        partitionHandler = f;
        def.byCustomPartitions = true;
        return afterPartition();
      } };
    if (allowForeach) {
      next.foreachStream = function () { def.byStreams = true; return afterPartition(); };
    }
    return next;
  }
  function streamName(s) {
    if (typeof s !== 'string' || s === '') throw new Error('a stream name is a non-empty string');
    return s;
  }

  global.fromAll = function () {
    select(function () { def.allStreams = true; });
    return afterSource(true);
  };
  global.fromStream = function (s) {
    select(function () { def.streams.push(streamName(s)); });
    return afterSource(false);
  };
  global.fromStreams = function (list) {
    var names = Array.isArray(list) ? list : Array.prototype.slice.call(arguments);
    select(function () {
      for (var i = 0; i < names.length; i++) def.streams.push(streamName(names[i]));
    });
    return afterSource(false);
  };
  global.fromCategory = function (c) {
    select(function () { def.categories.push(streamName(c)); });
    return afterSource(true);
  };
  global.options = function (o) {
    var known = { resultStreamName: 1, $includeLinks: 1, reorderEvents: 1, processingLag: 1 };
    for (var k in o) {
      if (!known[k]) throw new Error('Unrecognized option: ' + k);
    }
    if (o.resultStreamName !== undefined) def.resultStreamName = String(o.resultStreamName);
    if (o.$includeLinks !== undefined) def.includeLinks = !!o.$includeLinks;
    if (o.reorderEvents !== undefined) def.reorderEvents = !!o.reorderEvents;
    if (o.processingLag !== undefined) def.processingLag = Number(o.processingLag) || 0;
  };
  function pushEmitted(e) {
    if (emitted.length >= EMITTED_MAX) {
      throw new Error('a handler may emit at most ' + EMITTED_MAX + ' events per event');
    }
    emitted.push(e);
  }
  global.emit = function (stream, type, body, metadata) {
    if (typeof type !== 'string' || type === '') throw new Error('emit needs an event type');
    pushEmitted({ streamId: streamName(stream), eventType: type, isJson: true,
      data: JSON.stringify(body === undefined ? {} : body),
      metadata: metadata === undefined || metadata === null ? '' : JSON.stringify(metadata) });
  };
  global.linkTo = function (stream, event, metadata) {
    if (!event || event.sequenceNumber === undefined || !event.streamId) {
      throw new Error('linkTo needs the event a handler received');
    }
    pushEmitted({ streamId: streamName(stream), eventType: '$>', isJson: false,
      data: event.sequenceNumber + '@' + event.streamId,
      metadata: metadata === undefined || metadata === null ? '' : JSON.stringify(metadata) });
  };
  global.log = function (message) {
    if (logLines.length >= LOG_LINES_MAX) logLines.shift();
    logLines.push(typeof message === 'string' ? message : JSON.stringify(message));
  };

  function Envelope(bodyRaw, isJson, streamId, eventType, category, sequenceNumber,
                    metadataRaw, linkMetadataRaw, partition, eventId) {
    this.isJson = isJson;
    this.bodyRaw = bodyRaw;
    this.body = this.data = null;
    this.eventType = eventType;
    this.streamId = streamId;
    this.category = category;
    this.sequenceNumber = sequenceNumber;
    this.metadataRaw = metadataRaw;
    this.linkMetadataRaw = linkMetadataRaw;
    this.partition = partition;
    this.eventId = eventId;
    if (isJson) {
      try {
        this.body = this.data = bodyRaw === '' ? {} : JSON.parse(bodyRaw);
      } catch (e) {
        this.body = this.data = undefined;
        this.jsonError = String(e);
      }
    }
  }
  function parsedOrEmpty(raw) {
    if (!raw) return {};
    try { return JSON.parse(raw); } catch (e) { return {}; }
  }
  Object.defineProperty(Envelope.prototype, 'metadata', {
    get: function () { return this.metadataRaw ? parsedOrEmpty(this.metadataRaw) : null; }
  });
  Object.defineProperty(Envelope.prototype, 'linkMetadata', {
    get: function () { return parsedOrEmpty(this.linkMetadataRaw); }
  });

  function call(h, state, arg) {
    var next = h(state, arg);
    return next === undefined ? state : next;
  }
  function ensureState(partition) {
    if (!(partition in states)) states[partition] = initHandler();
    if (def.biState && !sharedReady) {
      shared = initSharedHandler();
      sharedReady = true;
    }
  }
  function store(partition, state) {
    if (def.biState) {
      states[partition] = state[0];
      shared = state[1];
    } else {
      states[partition] = state;
    }
  }
  function takeEmitted() {
    var out = JSON.stringify(emitted);
    emitted = [];
    return out;
  }
  function entry(name, f) {
    Object.defineProperty(global, name, { value: f, writable: false, configurable: false });
  }

  entry('__chorus_definition', function () {
    if (!selected) {
      throw new Error('the query selects no source: call fromAll(), fromStream(), ' +
                      'fromStreams() or fromCategory()');
    }
    return JSON.stringify(def);
  });
  entry('__chorus_partition', function (bodyRaw, isJson, streamId, eventType, category, seq,
                                        metadataRaw, linkMetadataRaw, eventId) {
    var e = new Envelope(bodyRaw, isJson, streamId, eventType, category, seq, metadataRaw,
                         linkMetadataRaw, null, eventId);
    var p = partitionHandler(e);
    return p === undefined || p === null ? '' : String(p);
  });
  entry('__chorus_process', function (partition, bodyRaw, isJson, streamId, eventType,
                                      category, seq, metadataRaw, linkMetadataRaw, eventId) {
    emitted = [];
    ensureState(partition);
    var e = new Envelope(bodyRaw, isJson, streamId, eventType, category, seq, metadataRaw,
                         linkMetadataRaw, partition, eventId);
    var state = def.biState ? [states[partition], shared] : states[partition];
    if (!def.definesFold) {
      state = isJson ? e.body : { $e: bodyRaw };
    }
    for (var i = 0; i < anyHandlers.length; i++) state = call(anyHandlers[i], state, e);
    var h = handlers[eventType];
    if (h !== undefined) state = call(h, state, e);
    store(partition, state);
    return takeEmitted();
  });
  entry('__chorus_deleted', function (partition, isSoftDeleted) {
    emitted = [];
    if (def.biState) throw new Error('a projection with shared state cannot handle $deleted');
    ensureState(partition);
    var state = states[partition];
    var notice = { partition: partition, isSoftDeleted: isSoftDeleted };
    for (var i = 0; i < deletedHandlers.length; i++) state = call(deletedHandlers[i], state, notice);
    states[partition] = state;
    return takeEmitted();
  });
  entry('__chorus_state', function (partition) {
    return partition in states ? JSON.stringify(states[partition]) : null;
  });
  entry('__chorus_shared_state', function () {
    return sharedReady ? JSON.stringify(shared) : null;
  });
  entry('__chorus_result', function (partition) {
    if (!(partition in states)) return null;
    var r = states[partition];
    for (var i = 0; i < transforms.length && r !== null; i++) r = transforms[i](r);
    return r === null || r === undefined ? null : JSON.stringify(r);
  });
  entry('__chorus_load_state', function (partition, json) {
    states[partition] = JSON.parse(json);
    return null;
  });
  entry('__chorus_load_shared_state', function (json) {
    shared = JSON.parse(json);
    sharedReady = true;
    return null;
  });
  entry('__chorus_log', function () { return JSON.stringify(logLines); });
  entry('__chorus_snapshot', function () {
    return JSON.stringify({ states: states, sharedReady: sharedReady,
                            shared: sharedReady ? shared : null });
  });
  entry('__chorus_restore', function (json) {
    var o = JSON.parse(json);
    states = Object.create(null);
    for (var k in o.states) states[k] = o.states[k];
    sharedReady = !!o.sharedReady;
    shared = o.shared;
    return null;
  });
})(this);
)JS";

}  // namespace chorus::projections
