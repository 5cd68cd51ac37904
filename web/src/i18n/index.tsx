import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import en from "./en";
import zhCN, { type MessageKey } from "./zh-CN";

export type Language = "zh-CN" | "en";
export const MESSAGES: Record<Language, Record<MessageKey, string>> = { "zh-CN": zhCN, en };
const LANGUAGE_KEY = "console.language";

/** A message with its {placeholders} filled. */
export function format(language: Language, key: MessageKey, values?: Record<string, string | number>): string {
  // A key made at run time (a status the API added later) shows as itself, not as nothing.
  const text = MESSAGES[language][key] ?? key;
  return values ? text.replace(/\{(\w+)\}/g, (whole, name: string) => String(values[name] ?? whole)) : text;
}

/** Whether a key made at run time (e.g. `status.${status}`) has a message. */
export function hasMessage(key: string): key is MessageKey {
  return key in MESSAGES["zh-CN"];
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
  const setLanguage = useCallback((next: Language) => {
    sessionStorage.setItem(LANGUAGE_KEY, next);
    setLanguageState(next);
  }, []);
  const t = useCallback(
    (key: MessageKey, values?: Record<string, string | number>) => format(language, key, values),
    [language],
  );
  const value = useMemo(() => ({ language, setLanguage, t }), [language, setLanguage, t]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const found = useContext(I18nContext);
  if (!found) throw new Error("useI18n outside I18nProvider");
  return found;
}
