/**
 * The `template` resource: where templates are found, strict rendering with
 * errors at template:line:column, and the shipped sshd drop-in template —
 * through the executor on this machine's real shell (local connection).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ConfigError } from '../../../src/config/diagnostics.js';
import {
  renderTemplate,
  templateCandidates,
  templateResource,
  type TemplateArgs,
} from '../../../src/resources/template.js';
import { runPlayOnHost, type BoundPlay } from '../../../src/executor/host_run.js';
import type { TaskResult } from '../../../src/executor/results.js';
import { localShell } from '../../support/local_sh.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DROP_IN_TEMPLATE = path.join(REPO, 'templates', 'sshd-drop-in.conf.hbs');
const SSHD = '/usr/sbin/sshd';

let root: string;
let playbookDir: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-template-'));
  playbookDir = path.join(root, 'playbooks');
  fs.mkdirSync(playbookDir);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function put(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

async function apply(args: TemplateArgs, vars: Record<string, unknown>, check = false): Promise<TaskResult> {
  const play: BoundPlay = {
    name: 'templates',
    playbookDir,
    vars,
    tasks: [{ play: 'templates', name: 'render', resource: templateResource, args, notify: [] }],
    handlers: [],
  };
  const [result] = await runPlayOnHost(localShell(), play, { check });
  return result!;
}

/** The ConfigError renderTemplate throws, as the CLI prints it. */
function renderError(file: string, text: string, vars: Record<string, unknown>): string {
  try {
    renderTemplate(file, text, vars);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('rendering succeeded');
}

describe('finding the template', () => {
  test('relative: beside the playbook, then its templates/, then ../templates', () => {
    expect(templateCandidates('banner.hbs', '/srv/pb/playbooks')).toEqual([
      '/srv/pb/playbooks/banner.hbs',
      '/srv/pb/playbooks/templates/banner.hbs',
      '/srv/pb/templates/banner.hbs',
    ]);
    expect(templateCandidates('/opt/t/banner.hbs', '/srv/pb/playbooks')).toEqual(['/opt/t/banner.hbs']);
  });

  test('the first place that has it wins', async () => {
    const dest = path.join(root, 'out');
    put(path.join(root, 'templates', 'b.hbs'), 'from ../templates\n');
    expect((await apply({ src: 'b.hbs', dest }, {})).messages[0]).toContain(
      `rendered from ${path.join(root, 'templates', 'b.hbs')}`,
    );
    expect(fs.readFileSync(dest, 'utf8')).toBe('from ../templates\n');
    put(path.join(playbookDir, 'templates', 'b.hbs'), 'from templates/\n');
    await apply({ src: 'b.hbs', dest }, {});
    expect(fs.readFileSync(dest, 'utf8')).toBe('from templates/\n');
    put(path.join(playbookDir, 'b.hbs'), 'beside the playbook\n');
    await apply({ src: 'b.hbs', dest }, {});
    expect(fs.readFileSync(dest, 'utf8')).toBe('beside the playbook\n');
  });

  test('not found: the error names every place searched, and nothing is written', async () => {
    const dest = path.join(root, 'out');
    const result = await apply({ src: 'nope.hbs', dest }, {});
    expect(result.status).toBe('failed');
    expect(result.error).toBe(
      `template nope.hbs not found; looked in: ${playbookDir}/nope.hbs, ${playbookDir}/templates/nope.hbs, ${root}/templates/nope.hbs`,
    );
    expect(fs.existsSync(dest)).toBe(false);
  });
});

describe('strict rendering', () => {
  test('no HTML escaping: config files are not web pages', () => {
    expect(renderTemplate('/t.hbs', 'Banner {{ text }}\n', { text: '<"it\'s" & more>' })).toBe(
      'Banner <"it\'s" & more>\n',
    );
  });

  test('an undefined variable is an error at template:line:column, with a suggestion', () => {
    const text = '# header\nMaxAuthTries {{ max_auth_tries }}\n';
    expect(renderError('/srv/t/a.hbs', text, { max_auth_trie: 4 })).toBe(
      "/srv/t/a.hbs:2:17: error: undefined variable 'max_auth_tries' in template (did you mean 'max_auth_trie'?)",
    );
  });

  test('a missing nested field names its whole path', () => {
    expect(renderError('/t.hbs', 'x\n  {{ net.cidr }}\n', { net: {} })).toBe(
      "/t.hbs:2:6: error: undefined variable 'net.cidr' in template",
    );
  });

  test.each([
    ['#each', 'a\n{{#each sshd_settings}}{{@key}}{{/each}}\n', 2, 9],
    ['#if', '{{#if banner}}x{{/if}}', 1, 7],
    ['#unless', '\n\n  {{#unless banner}}x{{/unless}}', 3, 13],
    ['#with', '{{#with banner}}x{{/with}}', 1, 9],
  ])(
    'a missing argument of %s is an error too (handlebars alone renders nothing)',
    (_helper, text, line, column) => {
      expect(renderError('/t.hbs', text, {})).toMatch(
        new RegExp(`^/t\\.hbs:${line}:${column}: error: undefined variable`),
      );
    },
  );

  test('a defined but false value still takes the else branch', () => {
    expect(renderTemplate('/t.hbs', '{{#if on}}y{{else}}n{{/if}}', { on: false })).toBe('n');
  });

  test('a syntax error names the template and the line', () => {
    expect(renderError('/t.hbs', 'ok\nMaxAuthTries {{ x\n', { x: 1 })).toMatch(
      /^\/t\.hbs:2:1: error: invalid template: Parse error on line 2\n {2}.*\n {2}-+\^$/,
    );
    expect(renderError('/t.hbs', 'a\n{{#each m}}\n{{/if}}', { m: {} })).toBe(
      "/t.hbs:2:4: error: invalid template: each doesn't match if",
    );
  });

  test('through the executor the task fails with that message and writes nothing', async () => {
    put(path.join(playbookDir, 'banner.hbs'), 'Welcome to {{ site }}\n');
    const dest = path.join(root, 'issue.net');
    const result = await apply({ src: 'banner.hbs', dest }, { sitename: 'x' });
    expect(result.status).toBe('failed');
    expect(result.error).toContain(`${playbookDir}/banner.hbs:1:15: error: undefined variable 'site'`);
    expect(fs.existsSync(dest)).toBe(false);
  });

  test('property: plain text without {{ renders to itself', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('{{') && !s.includes('\\')),
        (text) => {
          expect(renderTemplate('/t.hbs', text, {})).toBe(text);
        },
      ),
    );
  });
});

describe('converging', () => {
  test('renders at plan time, writes with mode and owner, then nothing to do', async () => {
    put(
      path.join(playbookDir, 'templates', 'issue.hbs'),
      'Authorised use of {{ inventory_hostname }} only\n',
    );
    const dest = path.join(root, 'issue.net');
    const args: TemplateArgs = { src: 'issue.hbs', dest, mode: '0640', owner: 'root', group: 'nogroup' };
    const vars = { inventory_hostname: 'web1' };

    const planned = await apply(args, vars, true);
    expect(planned.status).toBe('changed');
    expect(planned.diff).toContain('+Authorised use of web1 only');
    expect(fs.existsSync(dest)).toBe(false);

    expect((await apply(args, vars)).status).toBe('changed');
    expect(fs.readFileSync(dest, 'utf8')).toBe('Authorised use of web1 only\n');
    const s = fs.statSync(dest);
    expect([(s.mode & 0o777).toString(8), s.uid, s.gid]).toEqual(['640', 0, 65534]);

    expect((await apply(args, vars)).status).toBe('ok');
    // Another host's variables change the content.
    const other = await apply(args, { inventory_hostname: 'web2' });
    expect(other.diff).toMatch(/-Authorised use of web1 only\n\+Authorised use of web2 only/);
  });

  test('a mode-only difference is a chmod with no diff', async () => {
    put(path.join(playbookDir, 'a.hbs'), 'x\n');
    const dest = put(path.join(root, 'a'), 'x\n');
    fs.chmodSync(dest, 0o644);
    const result = await apply({ src: 'a.hbs', dest, mode: '0600' }, {});
    expect(result).toMatchObject({ status: 'changed', diff: '', commands: [`chmod -- 0600 ${dest}`] });
    expect((fs.statSync(dest).mode & 0o777).toString(8)).toBe('600');
  });
});

describe('templates/sshd-drop-in.conf.hbs', () => {
  const text = () => fs.readFileSync(DROP_IN_TEMPLATE, 'utf8');

  test('renders one directive a line from sshd_settings, under a managed-by header', () => {
    const rendered = renderTemplate(DROP_IN_TEMPLATE, text(), {
      sshd_settings: { MaxAuthTries: 4, LoginGraceTime: 45, PasswordAuthentication: 'no' },
    });
    expect(rendered).toBe(
      [
        '# Managed by sshfix: edits made here are overwritten by the next run.',
        '# sshd reads drop-ins in lexical order and the first value of a keyword wins.',
        'MaxAuthTries 4',
        'LoginGraceTime 45',
        'PasswordAuthentication no',
        '',
      ].join('\n'),
    );
  });

  test('without sshd_settings it is an error, not a drop-in with only a header', () => {
    expect(renderError(DROP_IN_TEMPLATE, text(), {})).toMatch(
      new RegExp(`^${DROP_IN_TEMPLATE}:3:9: error: undefined variable 'sshd_settings'`),
    );
  });

  (fs.existsSync(SSHD) ? test : test.skip)('what it renders is accepted by the real sshd -t', () => {
    const file = put(
      path.join(root, 'drop-in.conf'),
      renderTemplate(DROP_IN_TEMPLATE, text(), {
        sshd_settings: { MaxAuthTries: 4, MaxStartups: '30:30:100' },
      }),
    );
    fs.mkdirSync('/run/sshd', { recursive: true });
    const check = spawnSync(SSHD, ['-t', '-f', file], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

describe('.j2 sources are Jinja, as in Ansible', () => {
  test('renders loops, conditions and filters, keeping the last newline', () => {
    const text =
      '{% for net in nets %}\nsshd: {{ net }}\n{% endfor %}\nMaxAuthTries {{ tries | default(3) }}\n{% if banner is defined %}Banner {{ banner }}\n{% endif %}';
    expect(renderTemplate('/t/allow.j2', text, { nets: ['10.0.0.0/8', '192.0.2.0/24'] })).toBe(
      'sshd: 10.0.0.0/8\nsshd: 192.0.2.0/24\nMaxAuthTries 3\n',
    );
  });

  test('a file that is one expression renders as text', () => {
    expect(renderTemplate('/t/port.j2', '{{ port }}\n', { port: 2222 })).toBe('2222\n');
  });

  test('an undefined variable is an error at template:line:column, with a suggestion', () => {
    const text = '# header\nMaxAuthTries {{ max_auth_tries }}\n';
    expect(renderError('/srv/t/a.j2', text, { max_auth_trie: 4 })).toBe(
      "/srv/t/a.j2:2:17: error: undefined variable 'max_auth_tries' (did you mean 'max_auth_trie'?)",
    );
  });

  test('a syntax error or an unknown filter names the file', () => {
    expect(renderError('/t/a.j2', 'x {{ y }\n', { y: 1 })).toMatch(/^error: invalid template \/t\/a\.j2: \w/);
    expect(renderError('/t/a.j2', 'x {{ y | nope }}\n', { y: 1 })).toBe(
      "error: invalid template /t/a.j2: unknown filter 'nope'",
    );
  });

  test('handlebars syntax in a .hbs source still renders as handlebars', () => {
    expect(renderTemplate('/t/a.hbs', '{{#each nets}}{{this}} {{/each}}', { nets: ['a', 'b'] })).toBe('a b ');
  });
});
