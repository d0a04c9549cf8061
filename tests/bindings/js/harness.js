// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The little the GJS suites need from a test framework, which GJS does not
// ship: tests registered with test(), awaited one after another by run(),
// reported in TAP for meson, each with a time limit.

import GLib from 'gi://GLib';
import System from 'system';

const TIMEOUT_SECONDS = 20;
const tests = [];

export function test(name, body) {
    tests.push({name, body});
}

export function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new Error(message);
}

export function assertEqual(actual, expected, what = 'value') {
    const actualText = JSON.stringify(actual);
    const expectedText = JSON.stringify(expected);
    if (actualText !== expectedText)
        throw new Error(`${what}: expected ${expectedText}, got ${actualText}`);
}

export function assertGError(error, domain, code) {
    if (!(error instanceof GLib.Error))
        throw new Error(`expected a GLib.Error, got ${error}`);
    if (!error.matches(domain, code)) {
        throw new Error(`expected error code ${code}, ` +
            `got ${error.domain}:${error.code}: ${error.message}`);
    }
    return error;
}

export function assertThrows(call, domain, code) {
    try {
        call();
    } catch (error) {
        return assertGError(error, domain, code);
    }
    throw new Error('expected an error, but the call succeeded');
}

export async function assertRejects(promise, domain, code) {
    try {
        await promise;
    } catch (error) {
        return assertGError(error, domain, code);
    }
    throw new Error('expected an error, but the call succeeded');
}

export function env(name) {
    const value = GLib.getenv(name);
    if (value === null)
        throw new Error(`${name} is not set: run this suite through localserver.py`);
    return value;
}

function withTimeout(promise, name) {
    let timeoutId = 0;
    const timeout = new Promise((resolve, reject) => {
        timeoutId = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, TIMEOUT_SECONDS, () => {
            timeoutId = 0;
            reject(new Error(`${name} did not finish within ${TIMEOUT_SECONDS} s`));
            return GLib.SOURCE_REMOVE;
        });
    });
    return Promise.race([promise, timeout]).finally(() => {
        if (timeoutId)
            GLib.source_remove(timeoutId);
    });
}

// Runs the registered tests and exits with a failure status if any failed.
export async function run() {
    let failures = 0;

    print(`1..${tests.length}`);
    for (const [index, {name, body}] of tests.entries()) {
        try {
            await withTimeout(Promise.resolve().then(body), name);
            print(`ok ${index + 1} ${name}`);
        } catch (error) {
            failures++;
            print(`not ok ${index + 1} ${name}`);
            const details = `${error}\n${error.stack ?? ''}`.trim();
            for (const line of details.split('\n'))
                print(`# ${line}`);
        }
    }

    if (failures > 0)
        System.exit(1);
}
