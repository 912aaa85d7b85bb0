import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../../src/producer/address-policy.js';
import { createPrepareInput } from '../../src/worker/prepare-input.js';
import { enqueueDirect, startLocalRig, waitForRecords, type LocalRig } from './preflight-fixtures.js';
import { closedPort } from '../helpers/ports.js';

let rig: LocalRig | undefined;
let redirector: Server | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
  await new Promise<void>((r) => (redirector ? redirector.close(() => r()) : r()));
  redirector = undefined;
});


describe('pre-flight in the submit lane', () => {
  it('records failed with the reason and sends no createTask for inputs kie.ai would refuse', async () => {
    rig = await startLocalRig({ env: { OUTPUT_DIR: '' } });
    const good = rig.image('good', 64, 48, 'webp');
    const bad = {
      notImage: `${rig.sim.url}/sim/images/notimage.jpg`,
      huge: `${rig.sim.url}/sim/images/huge-2000x1800.png`,
      tooWide: rig.image('wide', 3000, 2000, 'jpg'),
      gif: `${rig.sim.url}/sim/images/anim-32x32.gif`,
      unreachable: `http://127.0.0.1:${await closedPort()}/gone.png`,
      missing: `${rig.sim.url}/sim/images/nosuchname.png`,
    };
    const batch = 'pf-reject';
    const items = [{ input: good }, ...Object.entries(bad).map(([k, input]) => ({ input, factor: k === 'tooWide' ? ('8' as const) : ('2' as const) }))];
    await rig.start();
    await enqueueDirect(rig.rt, batch, items);
    const records = await waitForRecords(rig.rt, batch);
    const by = (input: string) => records.find((r) => r.input === input);
    expect(by(good)).toMatchObject({ state: 'succeeded', submitAttempts: 1 });
    const expected: Record<keyof typeof bad, RegExp> = {
      notImage: /not an image \(the content is an HTML page\)/,
      huge: /10\.3 MB, over kie.ai's 10 MB input limit/,
      tooWide: /output would be 24000 px .*3000×2000 × 8/,
      gif: /format image\/gif is not accepted/,
      unreachable: /could not be fetched \(ECONNREFUSED\)/,
      missing: /answered HTTP 404/,
    };
    for (const [key, input] of Object.entries(bad)) {
      expect(by(input), key).toMatchObject({ state: 'failed', failCode: 'preflight', submitAttempts: 0, taskId: null });
      expect(by(input)?.failMsg, key).toMatch(expected[key as keyof typeof bad]);
    }
    const stats = rig.sim.stats();
    expect(stats.createAccepted).toBe(1);
    expect(Object.keys(stats.perInput)).toEqual([good]);
    expect(stats.rejected422).toBe(0);
  });

  it('refuses private addresses without ALLOW_PRIVATE_URLS, also behind a redirect', async () => {
    // 127.0.0.1 plays the public internet here; every other private address keeps the real policy.
    rig = await startLocalRig({ env: { ALLOW_PRIVATE_URLS: 'false', OUTPUT_DIR: '' } });
    const simPort = rig.sim.port;
    redirector = createServer((req, res) => res.writeHead(302, { location: `http://127.0.0.2:${simPort}/sim/images/r-64x48.png` }).end());
    await new Promise<void>((r) => redirector!.listen(0, '127.0.0.1', r));
    const redirect = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/img.png`;
    const prepareInput = createPrepareInput(rig.rt, {
      preflight: {
        isPrivate: (ip) => ip !== '127.0.0.1' && isPrivateAddress(ip),
        resolve: (host) => Promise.resolve([{ address: host === 'intranet.test' ? '10.1.2.3' : '127.0.0.1', family: 4 }]),
      },
    });
    await rig.start({ prepareInput });
    const pub = rig.image('pub', 64, 48, 'png');
    const literal = `http://127.0.0.2:${simPort}/sim/images/lit-64x48.png`;
    const named = `http://intranet.test:${simPort}/sim/images/named-64x48.png`;
    const batch = 'pf-ssrf';
    await enqueueDirect(rig.rt, batch, [{ input: pub }, { input: literal }, { input: named }, { input: redirect }]);
    const records = await waitForRecords(rig.rt, batch);
    const by = (input: string) => records.find((r) => r.input === input);
    expect(by(pub)?.state).toBe('succeeded');
    expect(by(literal)).toMatchObject({ state: 'failed', failCode: 'preflight', failMsg: expect.stringMatching(/127\.0\.0\.2 resolves to the private address 127\.0\.0\.2; set ALLOW_PRIVATE_URLS=true/) as unknown });
    expect(by(named)).toMatchObject({ state: 'failed', failMsg: expect.stringMatching(/intranet\.test resolves to the private address 10\.1\.2\.3/) as unknown });
    expect(by(redirect)).toMatchObject({ state: 'failed', failMsg: expect.stringMatching(/private address 127\.0\.0\.2/) as unknown });
    expect(Object.keys(rig.sim.stats().perInput)).toEqual([pub]);
  });
});
