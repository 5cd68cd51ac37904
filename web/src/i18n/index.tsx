import type { Locale } from "antd/es/locale";
import antdZhCN from "antd/locale/zh_CN";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import zhCN, { type MessageKey } from "./zh-CN";

export type Language = "zh-CN" | "en";
const LANGUAGE_KEY = "console.language";

interface Translation {
  messages: Record<MessageKey, string>;
  antd: Locale;
}

/** The languages loaded so far: zh-CN, the default, comes with the console; English is a chunk
 * of its own, fetched when someone asks for it. */
const loaded: Partial<Record<Language, Translation>> = { "zh-CN": { messages: zhCN, antd: antdZhCN } };

export function isLoaded(language: Language): boolean {
  return loaded[language] !== undefined;
}

export async function loadLanguage(language: Language): Promise<void> {
  if (isLoaded(language)) return;
  const [messages, antd] = await Promise.all([import("./en"), import("antd/locale/en_US")]);
  loaded[language] = { messages: messages.default, antd: antd.default };
}

/** Ant Design's own texts (pagination, pickers, empty tables) in a loaded language. */
export function antdLocale(language: Language): Locale {
  return (loaded[language] ?? loaded["zh-CN"]!).antd;
}

/** Whether `language` is ready to show, loading it when it is not yet. */
export function useLanguageReady(language: Language): boolean {
  const [ready, setReady] = useState(() => isLoaded(language));
  useEffect(() => {
    if (isLoaded(language)) {
      setReady(true);
      return;
    }
    setReady(false);
    let current = true;
    void loadLanguage(language).then(() => current && setReady(true));
    return () => {
      current = false;
    };
  }, [language]);
  return ready && isLoaded(language);
}

/** A message with its {placeholders} filled. */
export function format(language: Language, key: MessageKey, values?: Record<string, string | number>): string {
  // A key made at run time (a status the API added later) shows as itself, not as nothing.
  const text = (loaded[language] ?? loaded["zh-CN"]!).messages[key] ?? key;
  return values ? text.replace(/\{(\w+)\}/g, (whole, name: string) => String(values[name] ?? whole)) : text;
}

/** Whether a key made at run time (e.g. `status.${status}`) has a message. */
export function hasMessage(key: string): key is MessageKey {
  return key in zhCN;
}

export function asLanguage(value: string | null | undefined): Language | null {
  if (!value) return null;
  if (value === "en" || value.toLowerCase().startsWith("en")) return "en";
  if (value.toLowerCase().startsWith("zh")) return "zh-CN";
  return null;
}

interface I18n {
  language: Language;
  setLanguage: (language: Language) => void;
  t: (key: MessageKey, values?: Record<string, string | number>) => string;
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children, initial }: { children: ReactNode; initial?: Language }) {
  const [language, setLanguageState] = useState<Language>(
    () => initial ?? asLanguage(sessionStorage.getItem(LANGUAGE_KEY)) ?? "zh-CN",
  );
  // The screens stay in the old language until the new one's chunk has come: nothing unmounts.
  const setLanguage = useCallback((next: Language) => {
    sessionStorage.setItem(LANGUAGE_KEY, next);
    void loadLanguage(next).then(() => setLanguageState(next));
  }, []);
  // Only a tab reopened in English waits for that chunk before its first screen.
  const ready = useLanguageReady(language);
  const t = useCallback(
    (key: MessageKey, values?: Record<string, string | number>) => format(language, key, values),
    [language],
  );
  const value = useMemo(() => ({ language, setLanguage, t }), [language, setLanguage, t]);
  return <I18nContext.Provider value={value}>{ready ? children : null}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const found = useContext(I18nContext);
  if (!found) throw new Error("useI18n outside I18nProvider");
  return found;
}
