import type { HookAdminInput, HookAdminRoute, HookContext } from './api.js';
import type { LoadedHook } from './chain.js';

/** An answer of a hook admin route that is not the handler's own 200: status, message, and for 405 the methods. */
export class AdminRouteError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly allow?: string,
  ) {
    super(message);
  }
}

export interface ResolvedAdminRoute {
  hook: LoadedHook;
  route: HookAdminRoute<unknown>;
  label: string;
}

/** The route `METHOD name` of the hook named `hookName` in `hooks`; AdminRouteError 404/405 otherwise. */
export function findAdminRoute(hooks: readonly LoadedHook[], hookName: string, method: string, name: string): ResolvedAdminRoute {
  const hook = hooks.find((h) => h.name === hookName);
  if (!hook) throw new AdminRouteError(404, `no hook named ${JSON.stringify(hookName)} in the chain`);
  const routes = hook.module.admin ?? {};
  const entry = routes[`${method} ${name}`];
  if (!entry) {
    const allow = Object.keys(routes)
      .filter((k) => k.slice(k.indexOf(' ') + 1) === name)
      .map((k) => k.slice(0, k.indexOf(' ')));
    if (allow.length) throw new AdminRouteError(405, `/hooks/${hookName}/${name} accepts ${allow.join(', ')}`, allow.join(', '));
    const known = Object.keys(routes);
    throw new AdminRouteError(404, `hook ${JSON.stringify(hookName)} has no admin route ${JSON.stringify(name)}${known.length ? ` (it has: ${known.join(', ')})` : ''}`);
  }
  const route: HookAdminRoute<unknown> = typeof entry === 'function' ? { handler: entry as (i: unknown, ctx: HookContext) => unknown } : entry;
  return { hook, route, label: `${hookName} ${method} ${name}` };
}

/**
 * Validate `input` with the route's schema (400 naming the fields) and run the handler. A
 * HookAdminError of 4xx becomes an AdminRouteError with its status; anything else thrown is
 * rethrown (a server error).
 */
export async function runAdminRoute({ hook, route, label }: ResolvedAdminRoute, input: unknown): Promise<unknown> {
  if (route.input) {
    const v = route.input.safeParse(input);
    if (!v.success) throw new AdminRouteError(400, v.error.issues.map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`).join('; '));
    input = v.data;
  }
  try {
    return (await route.handler(input as HookAdminInput, hook.ctx)) ?? {};
  } catch (err) {
    // by name, not instanceof: a hook installed as a package may bring its own copy of the API
    const e = err as { name?: unknown; status?: unknown; message?: unknown } | null;
    if (e?.name === 'HookAdminError' && typeof e.status === 'number' && e.status >= 400 && e.status <= 499) throw new AdminRouteError(e.status, String(e.message));
    throw new Error(`hook admin route ${label}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
