import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pathWithSbin } from '../../src/_exec.js';
import { debianSourcesFor, parseDeb822, parseOneLine } from '../../src/images/sources.js';
import { adaptationFor, type HostFacts, parseLimits } from '../../src/podman/host.js';

const FULL_CAPS = 0x1ffffffffffn;
const NO_SYS_RESOURCE = 0x1fffeffffffn;
const facts = (over: Partial<HostFacts> = {}): HostFacts => ({
  capEff: FULL_CAPS,
  hardNofile: 1048576,
  hardNproc: 1048576,
  runtime: 'runc',
  runcAvailable: true,
  cgroupHybrid: false,
  ...over,
});

describe('podman host adaptation', () => {
  it('needs nothing on an ordinary host', () => {
    assert.equal(adaptationFor(facts()).containersConf, undefined);
  });

  it('caps container rlimits at the hard limits when root cannot raise them', () => {
    const a = adaptationFor(facts({ capEff: NO_SYS_RESOURCE, hardNofile: 20000, hardNproc: 96364 }));
    assert.match(a.containersConf ?? '', /default_ulimits = \["nofile=20000:20000", "nproc=32768:32768"\]/);
    assert.match(a.reasons[0]!, /CAP_SYS_RESOURCE/);
    const small = adaptationFor(facts({ capEff: NO_SYS_RESOURCE, hardNofile: 4096, hardNproc: 2048 }));
    assert.match(small.containersConf ?? '', /"nofile=4096:4096", "nproc=2048:2048"/);
  });

  it('keeps the defaults when root may raise limits', () => {
    assert.equal(adaptationFor(facts({ hardNofile: 20000 })).containersConf, undefined);
  });

  it('switches crun to runc on hybrid cgroups, when runc is there', () => {
    assert.match(
      adaptationFor(facts({ runtime: 'crun', cgroupHybrid: true })).containersConf ?? '',
      /runtime = "runc"/,
    );
    assert.equal(
      adaptationFor(facts({ runtime: 'crun', cgroupHybrid: true, runcAvailable: false })).containersConf,
      undefined,
    );
  });

  it('reads hard limits from /proc/self/limits', () => {
    const text = [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             96364                96364                processes ',
      'Max open files            1024                 20000                files     ',
    ].join('\n');
    assert.deepEqual(parseLimits(text), { nofile: 20000, nproc: 96364 });
  });
});

describe('apt sources', () => {
  const deb822 = `Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://other.example/apt
Suites: nodistro
Enabled: no
`;

  it('parses deb822 and one-line sources', () => {
    assert.equal(parseDeb822(deb822).length, 2);
    assert.deepEqual(
      parseOneLine('deb [arch=amd64] http://m.example/debian bookworm main contrib\n# deb x y z'),
      [{ uris: ['http://m.example/debian'], suites: ['bookworm'], components: ['main', 'contrib'] }],
    );
  });

  it("takes the images' mirrors from the host's sources", () => {
    const s = debianSourcesFor('bookworm', parseDeb822(deb822));
    assert.equal(s.mirror, 'http://mirror.example/debian');
    assert.match(s.sourcesFile, /URIs: http:\/\/mirror\.example\/debian\nSuites: bookworm bookworm-updates/);
    assert.match(
      s.sourcesFile,
      /URIs: http:\/\/security\.example\/debian-security\nSuites: bookworm-security/,
    );
  });

  it('lets the cloud file override the mirror', () => {
    const s = debianSourcesFor('bookworm', parseDeb822(deb822), { mirror: 'http://local.example/debian' });
    assert.equal(s.mirror, 'http://local.example/debian');
  });

  it('says how to fix a host without a Debian mirror', () => {
    assert.throws(() => debianSourcesFor('bookworm', []), /no Debian mirror for bookworm/);
  });
});

describe('PATH for the tools podstack runs', () => {
  it('adds the sbin folders a bare root shell lacks, keeping the order of what is there', () => {
    assert.equal(
      pathWithSbin('/usr/local/bin:/usr/bin:/bin'),
      '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
    );
    assert.equal(
      pathWithSbin('/usr/sbin:/usr/bin:/sbin:/usr/local/sbin'),
      '/usr/sbin:/usr/bin:/sbin:/usr/local/sbin',
    );
  });
});
