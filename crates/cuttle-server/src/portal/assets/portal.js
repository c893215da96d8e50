// Cuttle's portal script: forms that write through the REST API, live task logs, and the few
// editors that need more than a form. Plain JavaScript, no build step.
(function () {
  'use strict';

  var CSRF_COOKIE = 'Octopus-Csrf-Token';

  function csrfToken() {
    var parts = document.cookie.split(';');
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.indexOf(CSRF_COOKIE + '=') === 0) {
        return decodeURIComponent(part.slice(CSRF_COOKIE.length + 1));
      }
    }
    return '';
  }

  // Calls the API; rejects with an Error carrying the API's `Errors` lines.
  function api(method, url, body) {
    var headers = { 'Accept': 'application/json', 'X-Octopus-Csrf-Token': csrfToken() };
    var options = { method: method, headers: headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        if (text) {
          try { data = JSON.parse(text); } catch (_) { data = { ErrorMessage: text }; }
        }
        if (!response.ok) {
          var error = new Error((data && data.ErrorMessage) || response.statusText);
          error.status = response.status;
          error.errors = (data && data.Errors) || [];
          throw error;
        }
        return data;
      });
    });
  }

  // --- Documents and paths: `Steps/0/Actions/0` walks objects and arrays. ---
  function splitPath(path) {
    return path ? path.split('/') : [];
  }
  function getPath(document, path) {
    var node = document;
    splitPath(path).forEach(function (key) {
      if (node === undefined || node === null) return;
      node = node[key];
    });
    return node;
  }
  function setPath(document, path, value) {
    var keys = splitPath(path);
    var node = document;
    for (var i = 0; i < keys.length - 1; i++) {
      if (node[keys[i]] === undefined || node[keys[i]] === null) {
        node[keys[i]] = /^\d+$/.test(keys[i + 1]) ? [] : {};
      }
      node = node[keys[i]];
    }
    node[keys[keys.length - 1]] = value;
  }
  function embedded(selector) {
    var element = document.querySelector(selector);
    return element ? JSON.parse(element.textContent) : {};
  }

  function fieldValue(element) {
    var type = element.dataset.type || '';
    if (element.type === 'checkbox') {
      if (type === 'bool-string') return element.checked ? 'True' : 'False';
      return element.checked;
    }
    if (element.tagName === 'SELECT' && element.multiple) {
      return Array.prototype.filter.call(element.options, function (option) { return option.selected; })
        .map(function (option) { return option.value; });
    }
    var value = element.value;
    if (type === 'number') return value.trim() === '' ? null : Number(value);
    if (type === 'list') {
      return value.split(/[\n,]/).map(function (item) { return item.trim(); })
        .filter(function (item) { return item !== ''; });
    }
    if (type === 'json') return value.trim() === '' ? null : JSON.parse(value);
    if (type === 'datetime') return value === '' ? null : new Date(value).toISOString();
    if (type === 'optional' && value === '') return null;
    return value;
  }

  // The JSON a form sends: its base document (if any) with each named field set at its path.
  function formDocument(form) {
    var base = form.dataset.base ? embedded(form.dataset.base) : {};
    var prefix = form.dataset.path || '';
    var checklists = {};
    Array.prototype.forEach.call(form.elements, function (element) {
      if (!element.name || element.disabled || element.dataset.skip !== undefined) return;
      if (element.tagName === 'BUTTON') return;
      if (element.type === 'radio' && !element.checked) return;
      var path = prefix ? prefix + '/' + element.name : element.name;
      if (element.dataset.type === 'checklist') {
        // Checkboxes sharing a name send the list of the checked values.
        var list = getPath(base, path);
        if (!Array.isArray(list) || !checklists[path]) { list = []; checklists[path] = true; setPath(base, path, list); }
        if (element.checked) list.push(element.value);
        return;
      }
      var value = fieldValue(element);
      if (element.dataset.omitEmpty !== undefined && (value === '' || value === null ||
          (Array.isArray(value) && value.length === 0))) return;
      setPath(base, path, value);
    });
    return base;
  }

  function clearErrors(form) {
    form.querySelectorAll('.field-error').forEach(function (element) {
      element.hidden = true; element.textContent = '';
    });
    form.querySelectorAll('[aria-invalid]').forEach(function (element) {
      element.removeAttribute('aria-invalid');
    });
    var box = form.querySelector('.form-errors');
    if (box) { box.hidden = true; box.textContent = ''; }
  }

  // Finds where an API error line belongs: `Name: must not be empty` goes beside `Name`.
  function errorTarget(form, line) {
    // `Name: must not be empty` and `Name is required` both name their field first.
    var match = /^([A-Za-z][\w.\[\]\/-]*)(: | )/.exec(line);
    if (!match) return null;
    var field = match[1];
    var slots = form.querySelectorAll('[data-error-for]');
    for (var i = 0; i < slots.length; i++) {
      var name = slots[i].dataset.errorFor;
      var last = name.split('/').pop();
      if (name === field || last === field || field.split('.').pop() === last ||
          field.replace(/\[(\d+)\]/g, '/$1').replace(/\./g, '/') === name) {
        return slots[i];
      }
    }
    return null;
  }

  function showErrors(form, error) {
    var lines = error.errors && error.errors.length ? error.errors : [error.message];
    var general = [];
    lines.forEach(function (line) {
      var slot = errorTarget(form, line);
      if (slot) {
        slot.textContent = /^[^\s:]+: /.test(line) ? line.replace(/^[^\s:]+: /, '') : line;
        slot.hidden = false;
        var input = slot.parentElement.querySelector('input, select, textarea');
        if (input) {
          input.setAttribute('aria-invalid', 'true');
          input.setAttribute('aria-describedby', slot.id || '');
        }
      } else {
        general.push(line);
      }
    });
    var box = form.querySelector('.form-errors');
    if (!box) {
      box = document.createElement('div');
      box.className = 'form-errors';
      box.setAttribute('role', 'alert');
      form.prepend(box);
    }
    if (general.length || error.message) {
      box.textContent = error.message;
      if (general.length && !(general.length === 1 && general[0] === error.message)) {
        var list = document.createElement('ul');
        general.forEach(function (line) {
          var item = document.createElement('li'); item.textContent = line; list.appendChild(item);
        });
        box.appendChild(list);
      }
      box.hidden = false;
    }
    var firstInvalid = form.querySelector('[aria-invalid="true"]');
    if (firstInvalid) firstInvalid.focus();
  }

  function fillTemplate(template, data) {
    return template.replace(/\{([\w\/]+)\}/g, function (_, key) {
      var value = data ? getPath(data, key) : undefined;
      return value !== undefined && value !== null ? encodeURIComponent(value) : '';
    });
  }

  function afterSuccess(form, data) {
    var then = form.dataset.then;
    if (form.dataset.show) {
      // A value shown once (a new API key): show it instead of leaving the page.
      var target = document.querySelector(form.dataset.show);
      if (target) {
        target.querySelector('[data-value]').textContent = data[target.dataset.field];
        target.hidden = false;
        target.focus();
      }
      return;
    }
    if (then === 'reload' || !then) { window.location.reload(); return; }
    window.location.assign(fillTemplate(then, data));
  }

  function submitApiForm(form, event) {
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    clearErrors(form);
    var spec = form.dataset.api.split(' ');
    var method = spec[0];
    var url = spec.slice(1).join(' ');
    var body;
    try {
      body = method === 'DELETE' && !form.dataset.base ? undefined : formDocument(form);
      if (form.dataset.body === 'none') body = undefined;
      // A button group answers with the button pressed (`Result: Retry`).
      if (body !== undefined && event.submitter && event.submitter.name) {
        setPath(body, event.submitter.name, event.submitter.value);
      }
      if (form.dataset.transform && window.cuttle.transforms[form.dataset.transform]) {
        body = window.cuttle.transforms[form.dataset.transform](body, form);
      }
    } catch (problem) {
      showErrors(form, { message: String(problem.message || problem), errors: [] });
      return;
    }
    var buttons = form.querySelectorAll('button');
    buttons.forEach(function (button) { button.disabled = true; });
    api(method, url, body).then(function (data) {
      afterSuccess(form, data || {});
    }, function (error) {
      showErrors(form, error);
    }).then(function () {
      buttons.forEach(function (button) { button.disabled = false; });
    });
  }

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.api) submitApiForm(form, event);
  });

  // --- Times in the reader's own time zone. ---
  function localTimes(root) {
    (root || document).querySelectorAll('time[datetime]').forEach(function (element) {
      var date = new Date(element.getAttribute('datetime'));
      if (!isNaN(date)) {
        element.title = element.getAttribute('datetime');
        element.textContent = date.toLocaleString();
      }
    });
  }

  // --- Regions that refresh themselves (the dashboard): fetch the page, swap the region. ---
  function autoRefresh() {
    document.querySelectorAll('[data-refresh]').forEach(function (region) {
      var seconds = Number(region.dataset.refresh) || 5;
      setInterval(function () {
        if (document.hidden) return;
        fetch(window.location.href, { credentials: 'same-origin' }).then(function (response) {
          if (!response.ok) return null;
          return response.text();
        }).then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById(region.id);
          if (fresh && fresh.innerHTML !== region.innerHTML) {
            region.innerHTML = fresh.innerHTML;
            localTimes(region);
            applyFilter();
          }
        }).catch(function () {});
      }, seconds * 1000);
    });
  }

  // --- Client-side filter boxes: rows whose text does not contain the words are hidden. ---
  function applyFilter() {
    document.querySelectorAll('input[data-filter]').forEach(function (input) {
      var words = input.value.toLowerCase().trim();
      document.querySelectorAll(input.dataset.filter).forEach(function (row) {
        row.hidden = words !== '' && row.textContent.toLowerCase().indexOf(words) === -1;
      });
    });
  }
  document.addEventListener('input', function (event) {
    if (event.target.dataset && event.target.dataset.filter !== undefined) applyFilter();
  });

  // --- The live task log: blocks per activity, lines appended as they arrive. ---
  function liveLog() {
    var log = document.querySelector('[data-live-log]');
    if (!log || !window.EventSource || log.dataset.ended) return;
    var taskUrl = log.dataset.liveLog;
    var after = Number(log.dataset.after) || 0;
    var blocks = {};
    log.querySelectorAll('[data-activity]').forEach(function (block) {
      blocks[block.dataset.activity] = block;
    });
    var fetchingDetails = null;

    function blockFor(activityId) {
      if (blocks[activityId]) return Promise.resolve(blocks[activityId]);
      if (!fetchingDetails) {
        fetchingDetails = api('GET', taskUrl + '/details?verbose=false&tail=0').then(function (details) {
          fetchingDetails = null;
          addActivities(details.ActivityLogs || [], log);
        }, function () { fetchingDetails = null; });
      }
      return fetchingDetails.then(function () {
        if (!blocks[activityId]) {
          var parentId = activityId.indexOf('/') > 0 ? activityId.slice(0, activityId.lastIndexOf('/')) : 'task';
          addActivity({ Id: activityId, Name: activityId, Status: 'Running' }, blocks[parentId] || log);
        }
        return blocks[activityId];
      });
    }

    function addActivities(elements, parent) {
      elements.forEach(function (element) {
        var block = blocks[element.Id] || addActivity(element, parent);
        updateStatus(block, element.Status);
        addActivities(element.Children || [], block);
      });
    }

    function addActivity(element, parent) {
      var block = document.createElement('details');
      block.open = true;
      block.dataset.activity = element.Id;
      var summary = document.createElement('summary');
      var name = document.createElement('span');
      name.textContent = element.Name;
      var status = document.createElement('span');
      status.className = 'badge';
      summary.appendChild(name);
      summary.appendChild(status);
      var lines = document.createElement('ol');
      lines.className = 'lines';
      block.appendChild(summary);
      block.appendChild(lines);
      var container = parent === log ? log : parent;
      container.appendChild(block);
      blocks[element.Id] = block;
      updateStatus(block, element.Status);
      return block;
    }

    function updateStatus(block, status) {
      var badge = block.querySelector(':scope > summary > .badge');
      if (!badge || !status) return;
      var classes = { Success: 'success', SuccessWithWarning: 'success', Failed: 'failed', Running: 'running', Canceled: 'cancelled', Pending: 'queued', Skipped: 'queued' };
      badge.className = 'badge ' + (classes[status] || 'queued');
      badge.textContent = status;
    }

    function appendLine(line) {
      return blockFor(line.ActivityId || 'task').then(function (block) {
        var list = block.querySelector(':scope > ol.lines');
        var item = document.createElement('li');
        item.className = 'line ' + (line.Category || 'Info');
        item.dataset.sequence = line.Sequence;
        var when = document.createElement('time');
        when.setAttribute('datetime', line.OccurredAt);
        var date = new Date(line.OccurredAt);
        when.textContent = isNaN(date) ? line.OccurredAt : date.toLocaleTimeString();
        item.appendChild(when);
        item.appendChild(document.createTextNode(line.MessageText));
        list.appendChild(item);
      });
    }

    var queue = Promise.resolve();
    var source = new EventSource(taskUrl + '/events?after=' + after);
    source.addEventListener('line', function (event) {
      var line = JSON.parse(event.data);
      queue = queue.then(function () { return appendLine(line); });
    });
    source.addEventListener('state', function (event) {
      var data = JSON.parse(event.data);
      document.querySelectorAll('[data-task-state]').forEach(function (badge) {
        var classes = { Success: 'success', Failed: 'failed', TimedOut: 'failed', Executing: 'running', Cancelling: 'running', Canceled: 'cancelled', Queued: 'queued' };
        badge.className = 'badge ' + (classes[data.State] || 'queued');
        badge.dataset.state = data.State;
        badge.textContent = data.State === 'Canceled' ? 'Cancelled' : data.State;
      });
      var interruptions = document.querySelector('[data-interruptions]');
      if (data.HasPendingInterruptions && interruptions && !interruptions.children.length) {
        window.location.reload();
      }
    });
    source.addEventListener('end', function () {
      source.close();
      // The task finished while the page watched: show it as a finished task is shown
      // (times, duration, final statuses, no cancel button).
      queue.then(function () { window.location.reload(); });
    });
  }

  // --- Package upload with a progress bar (XMLHttpRequest reports upload progress). ---
  function packageUpload() {
    document.querySelectorAll('form[data-upload]').forEach(function (form) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        clearErrors(form);
        var data = new FormData(form);
        var request = new XMLHttpRequest();
        var bar = form.querySelector('progress');
        request.open('POST', form.dataset.upload);
        request.setRequestHeader('X-Octopus-Csrf-Token', csrfToken());
        request.upload.addEventListener('progress', function (progress) {
          if (progress.lengthComputable && bar) { bar.max = progress.total; bar.value = progress.loaded; bar.hidden = false; }
        });
        request.addEventListener('load', function () {
          if (request.status >= 200 && request.status < 300) { window.location.reload(); return; }
          var body = {};
          try { body = JSON.parse(request.responseText); } catch (_) {}
          showErrors(form, { message: body.ErrorMessage || request.statusText, errors: body.Errors || [] });
        });
        request.addEventListener('error', function () {
          showErrors(form, { message: 'The upload failed: the connection to the server was lost.', errors: [] });
        });
        request.send(data);
      });
    });
  }

  // --- The deployment process editor: reorder, disable and delete steps in place. ---
  function processEditor() {
    document.querySelectorAll('[data-process-op]').forEach(function (button) {
      button.addEventListener('click', function () {
        var editor = button.closest('[data-process]');
        var process = embedded(editor.dataset.process);
        var index = Number(button.dataset.index);
        var op = button.dataset.processOp;
        var steps = process.Steps || [];
        if (op === 'up' && index > 0) steps.splice(index - 1, 0, steps.splice(index, 1)[0]);
        else if (op === 'down' && index < steps.length - 1) steps.splice(index + 1, 0, steps.splice(index, 1)[0]);
        else if (op === 'toggle') {
          (steps[index].Actions || []).forEach(function (action) { action.IsDisabled = !action.IsDisabled; });
        } else if (op === 'delete') {
          if (!window.confirm('Delete the step "' + steps[index].Name + '"?')) return;
          steps.splice(index, 1);
        } else return;
        button.disabled = true;
        api('PUT', editor.dataset.url, process).then(function () { window.location.reload(); }, function (error) {
          var box = editor.querySelector('.form-errors');
          if (box) { box.textContent = error.message + ' ' + (error.errors || []).join(' '); box.hidden = false; }
          button.disabled = false;
        });
      });
    });
  }

  // --- The variables editor: a table of rows, saved as the whole variable set. ---
  function variablesEditor() {
    var editor = document.querySelector('[data-variables]');
    if (!editor) return;
    var template = editor.querySelector('template');
    editor.addEventListener('click', function (event) {
      var target = event.target;
      if (target.dataset.addVariable !== undefined) {
        var body = editor.querySelector('tbody');
        body.appendChild(template.content.cloneNode(true));
        body.lastElementChild.querySelector('input').focus();
      } else if (target.dataset.removeVariable !== undefined) {
        target.closest('tr').remove();
      }
    });
  }

  // --- Ordered lists (environments): swap two neighbours' SortOrder and save both. ---
  function reorder() {
    document.querySelectorAll('[data-reorder]').forEach(function (table) {
      table.addEventListener('click', function (event) {
        var button = event.target.closest('[data-move]');
        if (!button) return;
        var row = button.closest('tr');
        var other = button.dataset.move === 'up' ? row.previousElementSibling : row.nextElementSibling;
        if (!other) return;
        var first = JSON.parse(row.dataset.resource);
        var second = JSON.parse(other.dataset.resource);
        var order = first.SortOrder;
        first.SortOrder = second.SortOrder;
        second.SortOrder = order;
        if (first.SortOrder === second.SortOrder) first.SortOrder += button.dataset.move === 'up' ? -1 : 1;
        button.disabled = true;
        api('PUT', row.dataset.url, first).then(function () {
          return api('PUT', other.dataset.url, second);
        }).then(function () { window.location.reload(); }, function (error) {
          window.alert(error.message + ' ' + (error.errors || []).join(' '));
          button.disabled = false;
        });
      });
    });
  }

  window.cuttle = {
    api: api,
    csrfToken: csrfToken,
    transforms: {
      // The variables table → the variable set's `Variables`, keeping what each row had.
      variables: function (set, form) {
        var rows = form.querySelectorAll('tbody tr');
        set.Variables = Array.prototype.map.call(rows, function (row) {
          var value = function (name) { var element = row.querySelector('[data-column="' + name + '"]'); return element ? fieldValue(element) : null; };
          var original = row.dataset.original ? JSON.parse(row.dataset.original) : {};
          var variable = Object.assign({}, original);
          variable.Name = value('Name');
          variable.IsSensitive = value('IsSensitive');
          var newValue = value('Value');
          if (variable.IsSensitive && original.IsSensitive && newValue === '') {
            delete variable.Value; // unchanged: the server keeps the stored secret
          } else {
            variable.Value = newValue;
          }
          // Other types (certificates, accounts) are kept; text values follow the checkbox.
          if (!original.Type || original.Type === 'String' || original.Type === 'Sensitive') {
            variable.Type = variable.IsSensitive ? 'Sensitive' : 'String';
          }
          // Only the columns shown are edited: other scopes (machines, channels, steps) and the
          // prompt's other settings are kept as they were.
          variable.Scope = Object.assign({}, original.Scope || {});
          [['Environment', value('Environment')], ['Role', value('Role')]].forEach(function (pair) {
            if (pair[1] && pair[1].length) variable.Scope[pair[0]] = pair[1];
            else delete variable.Scope[pair[0]];
          });
          var label = value('Prompt');
          variable.Prompt = label
            ? Object.assign({ Description: '', Required: false }, original.Prompt || {}, { Label: label })
            : null;
          return variable;
        });
        return set;
      },
      // A lifecycle form: phases marked for removal go.
      lifecycle: function (lifecycle) {
        lifecycle.Phases = (lifecycle.Phases || []).filter(function (phase) {
          var remove = phase.RemovePhase;
          delete phase.RemovePhase;
          return !remove;
        });
        return lifecycle;
      },
      // A step form: the action carries the step's name, as Octopus keeps them alike.
      step: function (process, form) {
        var step = getPath(process, form.dataset.path);
        if (step && step.Actions && step.Actions[0]) step.Actions[0].Name = step.Name;
        return process;
      }
    }
  };

  function start() {
    localTimes();
    autoRefresh();
    applyFilter();
    liveLog();
    packageUpload();
    processEditor();
    variablesEditor();
    reorder();
    var focus = document.querySelector('[autofocus]');
    if (focus) focus.focus();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
